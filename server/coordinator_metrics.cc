#include "server/coordinator_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/server_interceptor.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
#include "common/log.h"
#include "common/version.h"
#include "worker/engine/flops.h"
#include "worker/engine/model_zoo.h"

namespace ocs::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Epoch durations from seconds to hours: CPU jobs take minutes per epoch, GPU jobs seconds.
const std::vector<double> kEpochBuckets = {1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
// RPC latencies: reports and status calls take milliseconds; streams last for minutes.
const std::vector<double> kRpcBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     5,    30,    300};

ClientMetric Value(MetricType type, Labels labels, double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  (type == MetricType::Counter ? metric.counter.value : metric.gauge.value) = value;
  return metric;
}

// A histogram of `samples` over `bounds` (+Inf added).
ClientMetric Histogram(Labels labels, const std::vector<double>& samples,
                       const std::vector<double>& bounds) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.histogram.sample_count = samples.size();
  for (double s : samples) metric.histogram.sample_sum += s;
  for (double bound : bounds) {
    uint64_t below = 0;
    for (double s : samples) below += s <= bound;
    metric.histogram.bucket.push_back({below, bound});
  }
  metric.histogram.bucket.push_back({samples.size(), std::numeric_limits<double>::infinity()});
  return metric;
}

// One family of samples, added to as the scrape walks the jobs and workers.
class Family {
 public:
  Family(std::string name, std::string help, MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
  }
  void Add(Labels labels, double value) { Add(Value(family_.type, std::move(labels), value)); }
  void Add(ClientMetric metric) { family_.metric.push_back(std::move(metric)); }
  MetricFamily Take() { return std::move(family_); }

 private:
  MetricFamily family_;
};

struct JobFamily {
  const char* name;
  const char* help;
  MetricType type;
};

const JobFamily kJobFamilies[] = {
    {"ocs_job_info", "1 per job; labels name its model, dataset and device", MetricType::Gauge},
    {"ocs_job_state", "1 for the job's current state, 0 for the others", MetricType::Gauge},
    {"ocs_job_epoch", "Epochs the job has completed (boundaries decided)", MetricType::Gauge},
    {"ocs_job_epochs", "Epochs the job trains in all (spec.training.epochs)", MetricType::Gauge},
    {"ocs_job_stability_score", "J_t: Jaccard similarity of the sub-network masks",
     MetricType::Gauge},
    {"ocs_job_stability_mean", "J-bar_t: running mean of J_t, compared with the threshold",
     MetricType::Gauge},
    {"ocs_job_stability_threshold", "The J-bar threshold that triggers the prune",
     MetricType::Gauge},
    {"ocs_job_train_loss", "Training loss of the last epoch (rank 0)", MetricType::Gauge},
    {"ocs_job_test_loss", "Test loss of the last epoch (rank 0)", MetricType::Gauge},
    {"ocs_job_train_accuracy_ratio", "Training accuracy of the last epoch, 0-1", MetricType::Gauge},
    {"ocs_job_test_accuracy_ratio", "Test accuracy of the last epoch, 0-1", MetricType::Gauge},
    {"ocs_job_learning_rate", "Learning rate at the last step of the last epoch",
     MetricType::Gauge},
    {"ocs_job_lambda", "Group-lasso strength for the coming epoch", MetricType::Gauge},
    {"ocs_job_flops", "FLOPs (multiply-accumulates) of the network now", MetricType::Gauge},
    {"ocs_job_dense_flops", "FLOPs of the dense network", MetricType::Gauge},
    {"ocs_job_params", "Parameters of the network now", MetricType::Gauge},
    {"ocs_job_dense_params", "Parameters of the dense network", MetricType::Gauge},
    {"ocs_job_flops_reduction_ratio", "1 - flops/dense flops: what pruning achieved, 0-1",
     MetricType::Gauge},
    {"ocs_job_prune_epoch", "The epoch at whose start the network was pruned", MetricType::Gauge},
    {"ocs_job_restarts_total", "Times the job restarted from a checkpoint", MetricType::Counter},
    {"ocs_job_epoch_duration_seconds", "Wall time of each epoch, boundary to boundary",
     MetricType::Histogram},
};

// What a job's spec says. A spec never changes, so it is parsed (and its dense model costed) once
// per job while the job is shown.
struct JobFacts {
  bool valid = false;  // false when the stored spec does not parse: the job shows nothing
  Labels info;         // ocs_job_info's labels
  int epochs = 0;
  double threshold = 0;
  int64_t dense_flops = 0, dense_params = 0;
};

JobFacts FactsOf(const JobRecord& job) {
  JobFacts facts;
  auto spec = common::ParseJobSpec(job.spec_yaml, job.id);
  if (!spec.ok()) return facts;
  facts.valid = true;
  facts.info = {{"job_id", job.id},
                {"job_name", job.name},
                {"arch", spec->model.arch},
                {"dataset", common::ToString(spec->data.dataset)},
                {"device", common::ToString(spec->resources.device)}};
  facts.epochs = spec->training.epochs;
  facts.threshold = spec->stability.threshold;
  const auto& s = spec->model.input_shape;
  auto network =
      worker::engine::BuildModel(spec->model.arch, spec->model.num_classes, {s[0], s[1], s[2]});
  if (network.ok()) {
    const worker::engine::ModelCost cost = worker::engine::NetworkCost(*network);
    facts.dense_flops = cost.flops;
    facts.dense_params = cost.params;
  }
  return facts;
}

// A job's samples, each with the name of its family.
class JobSamples {
 public:
  explicit JobSamples(const JobRecord& job) : id_{{"job_id", job.id}, {"job_name", job.name}} {}

  void Add(const char* family, double value, MetricType type = MetricType::Gauge) {
    samples_.emplace_back(family, Value(type, id_, value));
  }
  void Add(const char* family, Labels labels, double value) {
    samples_.emplace_back(family, Value(MetricType::Gauge, std::move(labels), value));
  }
  // The job's labels and one more.
  Labels With(const std::string& name, const std::string& value) const {
    Labels labels = id_;
    labels.push_back({name, value});
    return labels;
  }
  void AddHistogram(const char* family, const std::vector<double>& samples,
                    const std::vector<double>& bounds) {
    samples_.emplace_back(family, Histogram(id_, samples, bounds));
  }
  const std::vector<std::pair<std::string, ClientMetric>>& samples() const { return samples_; }

 private:
  Labels id_;
  std::vector<std::pair<std::string, ClientMetric>> samples_;
};

// What a job's samples were rendered from, for a job that is not active: they change only with a
// transition (a requeue counts a restart too), so they are reused while this stays the same.
struct RenderStamp {
  JobState state;
  int64_t update_time_ms;
  int restarts;
  bool operator==(const RenderStamp&) const = default;
};

// A job as the last scrape showed it: a scrape of many ended jobs reads no boundaries and parses
// no specs.
struct ShownJob {
  JobFacts facts;
  std::optional<RenderStamp> rendered_for;  // none: active, rendered anew at every scrape
  std::vector<std::pair<std::string, ClientMetric>> samples;
};

// Job and fleet metrics, read from the store and the registry at each scrape.
class StoreCollector final : public prometheus::Collectable {
 public:
  StoreCollector(JobStore& store, WorkerRegistry& workers, Clock clock,
                 const MetricsOptions& options)
      : store_(store),
        workers_(workers),
        clock_(std::move(clock)),
        retention_ms_(options.retention_ms),
        max_ended_jobs_(options.max_ended_jobs) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> families;
    CollectFleet(families);
    CollectJobs(families);
    return families;
  }

 private:
  void CollectFleet(std::vector<MetricFamily>& out) const {
    Family jobs("ocs_jobs", "Jobs in the store by state", MetricType::Gauge);
    Family queue("ocs_job_queue_length", "Jobs waiting for workers (pending)", MetricType::Gauge);
    auto counts = store_.CountByState();
    for (JobState state : kAllStates) {
      const int64_t n = counts.ok() && counts->count(state) ? counts->at(state) : 0;
      jobs.Add({{"state", ToString(state)}}, static_cast<double>(n));
      if (state == JobState::kPending) queue.Add({}, static_cast<double>(n));
    }
    Family by_state("ocs_workers",
                    "Registered workers by state: idle, busy, or lost (lease ran out)",
                    MetricType::Gauge);
    Family age("ocs_worker_heartbeat_age_seconds", "Seconds since each worker's last heartbeat",
               MetricType::Gauge);
    Family slots("ocs_worker_slots", "Ranks each worker can run at once", MetricType::Gauge);
    Family free("ocs_worker_free_slots", "Slots of each worker not running a rank",
                MetricType::Gauge);
    std::map<std::string, int> states = {{"idle", 0}, {"busy", 0}, {"lost", 0}};
    for (const WorkerInfo& w : workers_.List()) {
      const std::string state =
          !workers_.Alive(w) ? "lost" : (w.free_slots < w.slots ? "busy" : "idle");
      ++states[state];
      const Labels labels = {{"worker_id", w.id}, {"host", w.host}};
      age.Add(labels, (clock_() - w.last_heartbeat_ms) / 1000.0);
      slots.Add(labels, w.slots);
      free.Add(labels, w.free_slots);
    }
    for (const auto& [state, n] : states) by_state.Add({{"state", state}}, n);
    Family lost("ocs_workers_lost_total",
                "Workers declared lost (their lease ran out) since the coordinator started",
                MetricType::Counter);
    lost.Add({}, static_cast<double>(workers_.LostCount()));
    for (Family* f : {&jobs, &queue, &by_state, &lost, &age, &slots, &free}) {
      out.push_back(f->Take());
    }
  }

  void CollectJobs(std::vector<MetricFamily>& out) const {
    std::map<std::string, Family> families;
    for (const JobFamily& f : kJobFamilies)
      families.emplace(f.name, Family(f.name, f.help, f.type));
    // Concurrent scrapes take turns with the cache. The store is read under this lock: the
    // store never calls into the metrics, so the two locks are always taken in this order.
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, ShownJob> shown;
    auto ended = store_.RecentlyEnded(clock_() - retention_ms_, max_ended_jobs_);
    for (const JobRecord& job : JobsToShow(ended)) {
      auto cached = shown_.extract(job.id);
      ShownJob entry = cached ? std::move(cached.mapped()) : ShownJob{FactsOf(job), {}, {}};
      const RenderStamp stamp = {job.state, job.update_time_ms, job.restarts};
      if (IsActive(job.state) || entry.rendered_for != stamp) {
        entry.samples = Render(job, entry.facts).samples();
        entry.rendered_for = IsActive(job.state) ? std::nullopt : std::optional(stamp);
      }
      for (const auto& [family, metric] : entry.samples) families.at(family).Add(metric);
      shown.emplace(job.id, std::move(entry));
    }
    if (!ended.ok()) {
      // Ended jobs do not change: show them as the last scrape did rather than drop them all.
      common::LogWarning(absl::StrCat("metrics: listing ended jobs: ", ended.status().message()));
      for (auto& [id, entry] : shown_) {
        if (!entry.rendered_for || !IsTerminal(entry.rendered_for->state)) continue;
        for (const auto& [family, metric] : entry.samples) families.at(family).Add(metric);
        shown.emplace(id, std::move(entry));
      }
    }
    shown_ = std::move(shown);  // the cache keeps the jobs shown, no more
    for (auto& [name, family] : families) out.push_back(family.Take());
  }

  // Jobs not ended, and `ended`: the most recently ended within the retention period.
  std::vector<JobRecord> JobsToShow(const absl::StatusOr<std::vector<JobRecord>>& ended) const {
    std::vector<JobRecord> jobs =
        ListAllJobs(store_, {{JobState::kPending, JobState::kScheduled, JobState::kDense,
                              JobState::kSparsityLearning, JobState::kPruned},
                             {}});
    if (ended.ok()) jobs.insert(jobs.end(), ended->begin(), ended->end());
    return jobs;
  }

  JobSamples Render(const JobRecord& job, const JobFacts& facts) const {
    JobSamples out(job);
    if (!facts.valid) return out;
    out.Add("ocs_job_info", facts.info, 1);
    for (JobState state : kAllStates) {
      out.Add("ocs_job_state", out.With("state", ToString(state)), job.state == state ? 1 : 0);
    }
    out.Add("ocs_job_epochs", facts.epochs);
    out.Add("ocs_job_stability_threshold", facts.threshold);
    out.Add("ocs_job_restarts_total", job.restarts, MetricType::Counter);
    out.Add("ocs_job_dense_flops", static_cast<double>(facts.dense_flops));
    out.Add("ocs_job_dense_params", static_cast<double>(facts.dense_params));

    auto boundaries = store_.Boundaries(job.id);
    if (!boundaries.ok() || boundaries->empty()) {
      out.Add("ocs_job_epoch", 0);
      return out;
    }
    const BoundaryRecord& last = boundaries->back();
    out.Add("ocs_job_epoch", last.epoch);  // the boundary before epoch e ends e epochs
    out.Add("ocs_job_train_loss", last.train_loss);
    out.Add("ocs_job_test_loss", last.test_loss);
    out.Add("ocs_job_train_accuracy_ratio", last.train_accuracy);
    out.Add("ocs_job_test_accuracy_ratio", last.test_accuracy);
    out.Add("ocs_job_learning_rate", last.learning_rate);
    out.Add("ocs_job_lambda", last.lambda);
    out.Add("ocs_job_flops", static_cast<double>(last.flops));
    out.Add("ocs_job_params", static_cast<double>(last.params));
    if (facts.dense_flops > 0 && last.flops > 0) {
      out.Add("ocs_job_flops_reduction_ratio",
              1.0 - static_cast<double>(last.flops) / static_cast<double>(facts.dense_flops));
    }
    // Stability is measured until the prune; afterwards the last measured value stands.
    for (auto b = boundaries->rbegin(); b != boundaries->rend(); ++b) {
      if (!b->j_bar) continue;
      out.Add("ocs_job_stability_score", b->j.value_or(0));
      out.Add("ocs_job_stability_mean", *b->j_bar);
      break;
    }
    std::vector<double> durations;
    for (size_t i = 0; i < boundaries->size(); ++i) {
      const BoundaryRecord& b = (*boundaries)[i];
      if (b.prune) out.Add("ocs_job_prune_epoch", b.epoch);
      if (i > 0) durations.push_back((b.time_ms - (*boundaries)[i - 1].time_ms) / 1000.0);
    }
    out.AddHistogram("ocs_job_epoch_duration_seconds", durations, kEpochBuckets);
    return out;
  }

  JobStore& store_;
  WorkerRegistry& workers_;
  Clock clock_;
  const int64_t retention_ms_;
  const int max_ended_jobs_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, ShownJob> shown_;  // by job id
};

// Counts one call: created when it arrives, it records method, code and latency as the status
// goes out.
class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(std::string method, prometheus::Family<prometheus::Counter>& calls,
                 prometheus::Family<prometheus::Histogram>& latency)
      : method_(std::move(method)), calls_(calls), latency_(latency) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      calls_.Add({{"method", method_}, {"code", CodeName(methods->GetSendStatus().error_code())}})
          .Increment();
      latency_.Add({{"method", method_}}, prometheus::Histogram::BucketBoundaries(kRpcBuckets))
          .Observe(seconds);
    }
    methods->Proceed();
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    static const char* const kNames[] = {"OK",
                                         "CANCELLED",
                                         "UNKNOWN",
                                         "INVALID_ARGUMENT",
                                         "DEADLINE_EXCEEDED",
                                         "NOT_FOUND",
                                         "ALREADY_EXISTS",
                                         "PERMISSION_DENIED",
                                         "RESOURCE_EXHAUSTED",
                                         "FAILED_PRECONDITION",
                                         "ABORTED",
                                         "OUT_OF_RANGE",
                                         "UNIMPLEMENTED",
                                         "INTERNAL",
                                         "UNAVAILABLE",
                                         "DATA_LOSS",
                                         "UNAUTHENTICATED"};
    const int i = static_cast<int>(code);
    return i >= 0 && i < 17 ? kNames[i] : absl::StrCat(i);
  }

  const std::string method_;
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& latency_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The full names ("/ocs.v1.JobService/SubmitJob") of the methods the coordinator serves.
std::set<std::string> ServedMethods() {
  std::set<std::string> methods;
  for (const char* service :
       {"ocs.v1.JobService", "ocs.v1.WorkerService", "grpc.health.v1.Health"}) {
    const google::protobuf::ServiceDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    for (int i = 0; descriptor && i < descriptor->method_count(); ++i) {
      methods.insert(absl::StrCat("/", service, "/", descriptor->method(i)->name()));
    }
  }
  return methods;
}

class RpcCounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcCounterFactory(prometheus::Family<prometheus::Counter>& calls,
                    prometheus::Family<prometheus::Histogram>& latency)
      : calls_(calls), latency_(latency) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // Any client can call any path: a label taken from it as is would let junk calls add series
    // without end.
    const bool served = served_.count(info->method()) > 0;
    return new RpcInterceptor(served ? info->method() : "unknown", calls_, latency_);
  }

 private:
  const std::set<std::string> served_ = ServedMethods();
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& latency_;
};

}  // namespace

struct CoordinatorMetrics::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<StoreCollector> store;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>* calls = nullptr;
  prometheus::Family<prometheus::Histogram>* latency = nullptr;
};

CoordinatorMetrics::CoordinatorMetrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CoordinatorMetrics::~CoordinatorMetrics() = default;

absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> CoordinatorMetrics::Serve(
    const MetricsOptions& options, JobStore& store, WorkerRegistry& workers, Clock clock) {
  if (options.retention_ms < 0 || options.max_ended_jobs < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics: retention (", options.retention_ms, " ms) and max ended jobs (",
                     options.max_ended_jobs, ") must not be negative"));
  }
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(options.listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", options.listen, ": ", e.what()));
  }
  impl->store = std::make_shared<StoreCollector>(store, workers, clock, options);
  impl->calls = &prometheus::BuildCounter()
                     .Name("ocs_rpc_requests_total")
                     .Help("gRPC calls served, by method and status code")
                     .Register(*impl->registry);
  impl->latency = &prometheus::BuildHistogram()
                       .Name("ocs_rpc_duration_seconds")
                       .Help("gRPC call latency by method (streams: their whole life)")
                       .Register(*impl->registry);
  prometheus::BuildGauge()
      .Name("ocs_coordinator_info")
      .Help("1; the version label names the coordinator's release")
      .Register(*impl->registry)
      .Add({{"version", common::kVersion}, {"api_version", common::kApiVersion}})
      .Set(1);
  impl->exposer->RegisterCollectable(impl->store);
  impl->exposer->RegisterCollectable(impl->registry);
  return std::unique_ptr<CoordinatorMetrics>(new CoordinatorMetrics(std::move(impl)));
}

int CoordinatorMetrics::port() const {
  const std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
CoordinatorMetrics::RpcInterceptorFactory() {
  return std::make_unique<RpcCounterFactory>(*impl_->calls, *impl_->latency);
}

}  // namespace ocs::server
