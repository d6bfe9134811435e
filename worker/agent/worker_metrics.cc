#include "worker/agent/worker_metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/version.h"

namespace ocs::worker::agent {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Step times from a fraction of a millisecond (small models on a GPU) to tens of seconds.
const std::vector<double> kStepBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,  0.5,    1,     2.5,  5,     10,   30};

// The process's resident memory, read from /proc at each scrape.
class ResidentMemory final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    long pages = 0, resident = 0;
    std::ifstream("/proc/self/statm") >> pages >> resident;
    prometheus::ClientMetric metric;
    metric.gauge.value = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
    return {{"ocs_worker_resident_memory_bytes",
             "Resident memory of the worker process",
             prometheus::MetricType::Gauge,
             {metric}}};
  }
};

// The GPU's memory, read at each scrape: a value set at epoch ends went stale between jobs.
class DeviceMemoryCollector final : public prometheus::Collectable {
 public:
  explicit DeviceMemoryCollector(DeviceMemoryProbe probe) : probe_(std::move(probe)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    const DeviceMemoryReading reading =
        (probe_ ? probe_() : std::nullopt).value_or(DeviceMemoryReading{});
    prometheus::MetricFamily family{
        "ocs_worker_device_memory_bytes",
        "GPU memory in use (state=used, by every process) and in all (total)",
        prometheus::MetricType::Gauge,
        {}};
    for (const auto& [state, bytes] :
         {std::pair{"used", reading.used_bytes}, std::pair{"total", reading.total_bytes}}) {
      prometheus::ClientMetric metric;
      metric.label = {{"state", state}};
      metric.gauge.value = static_cast<double>(bytes);
      family.metric.push_back(metric);
    }
    return {family};
  }

 private:
  const DeviceMemoryProbe probe_;
};

prometheus::Labels LabelsOf(const RankLabels& r) {
  return {{"job_id", r.job_id}, {"job_name", r.job_name}, {"rank", absl::StrCat(r.rank)}};
}

}  // namespace

struct WorkerMetrics::Impl {
  struct Series {
    prometheus::Gauge* images_per_second = nullptr;
    prometheus::Counter* images = nullptr;
    prometheus::Histogram* step_seconds = nullptr;
    prometheus::Counter* allreduce_seconds = nullptr;
    std::optional<SteadyClock::time_point> ended;
  };

  // The registry, with expired rank series dropped first: series of an idle worker's ended ranks
  // went away only when a new rank started.
  class RegistryWithoutExpiredRanks final : public prometheus::Collectable {
   public:
    explicit RegistryWithoutExpiredRanks(Impl& impl) : impl_(impl) {}
    std::vector<prometheus::MetricFamily> Collect() const override {
      {
        std::lock_guard<std::mutex> lock(impl_.mutex);
        impl_.Prune();
      }
      return impl_.registry->Collect();
    }

   private:
    Impl& impl_;
  };

  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<ResidentMemory> resident = std::make_shared<ResidentMemory>();
  std::shared_ptr<DeviceMemoryCollector> device_memory;
  std::shared_ptr<RegistryWithoutExpiredRanks> collected =
      std::make_shared<RegistryWithoutExpiredRanks>(*this);
  prometheus::Family<prometheus::Gauge>* images_per_second = nullptr;
  prometheus::Family<prometheus::Counter>* images = nullptr;
  prometheus::Family<prometheus::Histogram>* step_seconds = nullptr;
  prometheus::Family<prometheus::Counter>* allreduce_seconds = nullptr;
  prometheus::Gauge* ranks = nullptr;
  std::chrono::seconds retention{900};
  std::mutex mutex;
  std::map<std::tuple<std::string, int>, Series> series;  // by (job, rank)
  // Last: destroyed first, so that no scrape reaches the members above as they go.
  std::unique_ptr<prometheus::Exposer> exposer;

  // Requires mutex.
  Series& Of(const RankLabels& rank) {
    Series& s = series[{rank.job_id, rank.rank}];
    if (!s.images_per_second) {
      const prometheus::Labels labels = LabelsOf(rank);
      s.images_per_second = &images_per_second->Add(labels);
      s.images = &images->Add(labels);
      s.step_seconds =
          &step_seconds->Add(labels, prometheus::Histogram::BucketBoundaries(kStepBuckets));
      s.allreduce_seconds = &allreduce_seconds->Add(labels);
    }
    return s;
  }

  // Requires mutex. Drops the series of ranks that ended longer ago than the retention.
  void Prune() {
    const auto now = SteadyClock::now();
    for (auto it = series.begin(); it != series.end();) {
      if (!it->second.ended || now - *it->second.ended < retention) {
        ++it;
        continue;
      }
      images_per_second->Remove(it->second.images_per_second);
      images->Remove(it->second.images);
      step_seconds->Remove(it->second.step_seconds);
      allreduce_seconds->Remove(it->second.allreduce_seconds);
      it = series.erase(it);
    }
  }
};

WorkerMetrics::WorkerMetrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WorkerMetrics::~WorkerMetrics() = default;

absl::StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Serve(const std::string& listen,
                                                                    const std::string& device,
                                                                    DeviceMemoryProbe device_memory,
                                                                    int64_t retention_seconds) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, ": ", e.what()));
  }
  impl->retention = std::chrono::seconds(retention_seconds);
  prometheus::Registry& r = *impl->registry;
  impl->images_per_second = &prometheus::BuildGauge()
                                 .Name("ocs_worker_images_per_second")
                                 .Help("Training images per second of the rank's last epoch")
                                 .Register(r);
  impl->images = &prometheus::BuildCounter()
                      .Name("ocs_worker_images_total")
                      .Help("Training images the rank has trained on")
                      .Register(r);
  impl->step_seconds = &prometheus::BuildHistogram()
                            .Name("ocs_worker_step_duration_seconds")
                            .Help("Wall time of each training step of the rank")
                            .Register(r);
  impl->allreduce_seconds = &prometheus::BuildCounter()
                                 .Name("ocs_worker_allreduce_seconds_total")
                                 .Help("Seconds the rank spent in the all-reduce of its gradients")
                                 .Register(r);
  impl->ranks = &prometheus::BuildGauge()
                     .Name("ocs_worker_ranks")
                     .Help("Ranks this worker runs now")
                     .Register(r)
                     .Add({});
  prometheus::BuildGauge()
      .Name("ocs_worker_info")
      .Help("1; labels name the worker's release and device type")
      .Register(r)
      .Add({{"version", common::kVersion}, {"device", device}})
      .Set(1);
  impl->device_memory = std::make_shared<DeviceMemoryCollector>(std::move(device_memory));
  impl->exposer->RegisterCollectable(impl->collected);
  impl->exposer->RegisterCollectable(impl->resident);
  impl->exposer->RegisterCollectable(impl->device_memory);
  return std::unique_ptr<WorkerMetrics>(new WorkerMetrics(std::move(impl)));
}

int WorkerMetrics::port() const {
  const std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

void WorkerMetrics::RankStarted(const RankLabels& rank) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->Prune();
  impl_->Of(rank).ended.reset();
  impl_->ranks->Increment();
}

void WorkerMetrics::StepDone(const RankLabels& rank, int64_t images,
                             std::optional<double> step_seconds, double allreduce_seconds) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl::Series& series = impl_->Of(rank);
  series.images->Increment(static_cast<double>(images));
  if (!step_seconds) return;
  series.step_seconds->Observe(*step_seconds);
  series.allreduce_seconds->Increment(allreduce_seconds);
}

void WorkerMetrics::Epoch(const RankLabels& rank, double images_per_second) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->Of(rank).images_per_second->Set(images_per_second);
}

void WorkerMetrics::RankEnded(const RankLabels& rank) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl::Series& s = impl_->Of(rank);
  // A rank that stopped trains no images: a last value kept would count in a job's sum, twice
  // over once the job restarts elsewhere.
  s.images_per_second->Set(0);
  s.ended = SteadyClock::now();
  impl_->ranks->Decrement();
}

}  // namespace ocs::worker::agent
