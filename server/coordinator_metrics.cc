#include "server/coordinator_metrics.h"

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
#include <set>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
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

// One family of samples, added to as the scrape walks the jobs and workers.
class Family {
 public:
  Family(std::string name, std::string help, MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
  }
  void Add(Labels labels, double value) {
    ClientMetric metric;
    metric.label = std::move(labels);
    (family_.type == MetricType::Counter ? metric.counter.value : metric.gauge.value) = value;
    family_.metric.push_back(std::move(metric));
  }
  // A histogram of `samples` over `bounds` (+Inf added).
  void AddHistogram(Labels labels, const std::vector<double>& samples,
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
    family_.metric.push_back(std::move(metric));
  }
  MetricFamily Take() { return std::move(family_); }

 private:
  MetricFamily family_;
};

// The dense cost of a job's model (cached: a model is built once per job).
struct DenseCost {
  int64_t flops = 0, params = 0;
};

// Job and fleet metrics, read from the store and the registry at each scrape.
class StoreCollector final : public prometheus::Collectable {
 public:
  StoreCollector(JobStore& store, WorkerRegistry& workers, Clock clock, int64_t retention_ms)
      : store_(store), workers_(workers), clock_(std::move(clock)), retention_ms_(retention_ms) {}

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
    for (Family* f : {&jobs, &queue, &by_state, &age, &slots, &free}) out.push_back(f->Take());
  }

  void CollectJobs(std::vector<MetricFamily>& out) const {
    std::map<std::string, Family> f;
    auto add = [&f](const char* name, const char* help, MetricType type = MetricType::Gauge) {
      f.emplace(name, Family(name, help, type));
    };
    add("ocs_job_info", "1 per job; labels name its model, dataset and device");
    add("ocs_job_state", "1 for the job's current state, 0 for the others");
    add("ocs_job_epoch", "Epochs the job has completed (boundaries decided)");
    add("ocs_job_epochs", "Epochs the job trains in all (spec.training.epochs)");
    add("ocs_job_stability_score", "J_t: Jaccard similarity of the sub-network masks");
    add("ocs_job_stability_mean", "J-bar_t: running mean of J_t, compared with the threshold");
    add("ocs_job_stability_threshold", "The J-bar threshold that triggers the prune");
    add("ocs_job_train_loss", "Training loss of the last epoch (rank 0)");
    add("ocs_job_test_loss", "Test loss of the last epoch (rank 0)");
    add("ocs_job_train_accuracy_ratio", "Training accuracy of the last epoch, 0-1");
    add("ocs_job_test_accuracy_ratio", "Test accuracy of the last epoch, 0-1");
    add("ocs_job_learning_rate", "Learning rate at the last step of the last epoch");
    add("ocs_job_lambda", "Group-lasso strength for the coming epoch");
    add("ocs_job_flops", "FLOPs (multiply-accumulates) of the network now");
    add("ocs_job_dense_flops", "FLOPs of the dense network");
    add("ocs_job_params", "Parameters of the network now");
    add("ocs_job_dense_params", "Parameters of the dense network");
    add("ocs_job_flops_reduction_ratio", "1 - flops/dense flops: what pruning achieved, 0-1");
    add("ocs_job_prune_epoch", "The epoch at whose start the network was pruned");
    add("ocs_job_restarts_total", "Times the job restarted from a checkpoint", MetricType::Counter);
    add("ocs_job_epoch_duration_seconds", "Wall time of each epoch, boundary to boundary",
        MetricType::Histogram);
    const std::vector<JobRecord> shown = JobsToShow();
    for (const JobRecord& job : shown) AddJob(job, f);
    for (auto& [name, family] : f) out.push_back(family.Take());
    ForgetDenseCostsExcept(shown);
  }

  // The cache keeps the jobs shown, no more: jobs past their retention leave it.
  void ForgetDenseCostsExcept(const std::vector<JobRecord>& shown) const {
    std::set<std::string> ids;
    for (const JobRecord& job : shown) ids.insert(job.id);
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(dense_, [&ids](const auto& entry) { return !ids.count(entry.first); });
  }

  // Jobs not ended, and jobs that ended within the retention period.
  std::vector<JobRecord> JobsToShow() const {
    std::vector<JobRecord> jobs =
        ListAllJobs(store_, {{JobState::kPending, JobState::kScheduled, JobState::kDense,
                              JobState::kSparsityLearning, JobState::kPruned},
                             {}});
    const std::vector<JobRecord> ended =
        ListAllJobs(store_, {{JobState::kSucceeded, JobState::kFailed, JobState::kCancelled},
                             {},
                             clock_() - retention_ms_});
    jobs.insert(jobs.end(), ended.begin(), ended.end());
    return jobs;
  }

  void AddJob(const JobRecord& job, std::map<std::string, Family>& f) const {
    auto spec = common::ParseJobSpec(job.spec_yaml, job.id);
    if (!spec.ok()) return;
    const Labels id = {{"job_id", job.id}, {"job_name", job.name}};
    auto with = [&id](const std::string& name, const std::string& value) {
      Labels labels = id;
      labels.push_back({name, value});
      return labels;
    };
    Labels info = id;
    info.push_back({"arch", spec->model.arch});
    info.push_back({"dataset", common::ToString(spec->data.dataset)});
    info.push_back({"device", common::ToString(spec->resources.device)});
    f.at("ocs_job_info").Add(info, 1);
    for (JobState state : kAllStates) {
      f.at("ocs_job_state").Add(with("state", ToString(state)), job.state == state ? 1 : 0);
    }
    f.at("ocs_job_epochs").Add(id, spec->training.epochs);
    f.at("ocs_job_stability_threshold").Add(id, spec->stability.threshold);
    f.at("ocs_job_restarts_total").Add(id, job.restarts);
    const DenseCost dense = Dense(job.id, *spec);
    f.at("ocs_job_dense_flops").Add(id, static_cast<double>(dense.flops));
    f.at("ocs_job_dense_params").Add(id, static_cast<double>(dense.params));

    auto boundaries = store_.Boundaries(job.id);
    if (!boundaries.ok() || boundaries->empty()) {
      f.at("ocs_job_epoch").Add(id, 0);
      return;
    }
    const BoundaryRecord& last = boundaries->back();
    f.at("ocs_job_epoch").Add(id, last.epoch);  // the boundary before epoch e ends e epochs
    f.at("ocs_job_train_loss").Add(id, last.train_loss);
    f.at("ocs_job_test_loss").Add(id, last.test_loss);
    f.at("ocs_job_train_accuracy_ratio").Add(id, last.train_accuracy);
    f.at("ocs_job_test_accuracy_ratio").Add(id, last.test_accuracy);
    f.at("ocs_job_learning_rate").Add(id, last.learning_rate);
    f.at("ocs_job_lambda").Add(id, last.lambda);
    f.at("ocs_job_flops").Add(id, static_cast<double>(last.flops));
    f.at("ocs_job_params").Add(id, static_cast<double>(last.params));
    if (dense.flops > 0 && last.flops > 0) {
      f.at("ocs_job_flops_reduction_ratio")
          .Add(id, 1.0 - static_cast<double>(last.flops) / static_cast<double>(dense.flops));
    }
    // Stability is measured until the prune; afterwards the last measured value stands.
    for (auto b = boundaries->rbegin(); b != boundaries->rend(); ++b) {
      if (!b->j_bar) continue;
      f.at("ocs_job_stability_score").Add(id, b->j.value_or(0));
      f.at("ocs_job_stability_mean").Add(id, *b->j_bar);
      break;
    }
    std::vector<double> durations;
    for (size_t i = 0; i < boundaries->size(); ++i) {
      const BoundaryRecord& b = (*boundaries)[i];
      if (b.prune) f.at("ocs_job_prune_epoch").Add(id, b.epoch);
      if (i > 0) durations.push_back((b.time_ms - (*boundaries)[i - 1].time_ms) / 1000.0);
    }
    f.at("ocs_job_epoch_duration_seconds").AddHistogram(id, durations, kEpochBuckets);
  }

  DenseCost Dense(const std::string& job_id, const common::JobSpec& spec) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto cached = dense_.find(job_id);
    if (cached != dense_.end()) return cached->second;
    const auto& s = spec.model.input_shape;
    DenseCost cost;
    auto network =
        worker::engine::BuildModel(spec.model.arch, spec.model.num_classes, {s[0], s[1], s[2]});
    if (network.ok()) {
      const worker::engine::ModelCost model = worker::engine::NetworkCost(*network);
      cost = {model.flops, model.params};
    }
    return dense_[job_id] = cost;
  }

  JobStore& store_;
  WorkerRegistry& workers_;
  Clock clock_;
  const int64_t retention_ms_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, DenseCost> dense_;
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

class RpcCounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcCounterFactory(prometheus::Family<prometheus::Counter>& calls,
                    prometheus::Family<prometheus::Histogram>& latency)
      : calls_(calls), latency_(latency) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcInterceptor(info->method(), calls_, latency_);
  }

 private:
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
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(options.listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", options.listen, ": ", e.what()));
  }
  impl->store = std::make_shared<StoreCollector>(store, workers, clock, options.retention_ms);
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
