// The worker's Prometheus endpoint (/metrics, default port 9471): what its ranks do — images per
// second, step time, time spent in all-reduce — and the memory the process and its GPU hold.
// Neither Torch nor prometheus-cpp in this header: the serve command feeds it plain numbers.
// Every metric is documented in docs/metrics.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace ocs::worker::agent {

// GPU memory in use (by every process) and in all.
struct DeviceMemoryReading {
  int64_t used_bytes = 0, total_bytes = 0;
};
// Reads it at each scrape; nullopt without a GPU.
using DeviceMemoryProbe = std::function<std::optional<DeviceMemoryReading>()>;

// Which rank a series belongs to.
struct RankLabels {
  std::string job_id, job_name;
  int rank = 0;
};

class WorkerMetrics {
 public:
  // Starts the HTTP endpoint on `listen` (host:port; port 0 picks a free one); Unavailable naming
  // the address when it cannot listen there. `device_memory` (may be empty) is read at each
  // scrape. `retention_seconds`: how long an ended rank's series stay.
  static absl::StatusOr<std::unique_ptr<WorkerMetrics>> Serve(const std::string& listen,
                                                              const std::string& device,
                                                              DeviceMemoryProbe device_memory = {},
                                                              int64_t retention_seconds = 900);
  ~WorkerMetrics();

  int port() const;
  void RankStarted(const RankLabels& rank);
  // A training step trained on `images` more images (counted at every step, so that rate() is
  // the throughput as it happens, within an epoch too). When it was timed, it took
  // `step_seconds` (data, forward, backward, all-reduce and update), `allreduce_seconds` of them
  // in the gradient all-reduce: both are counted only for timed steps, so that they divide into a
  // share. One call per step: one lock and one lookup on the training loop's path.
  void StepDone(const RankLabels& rank, int64_t images, std::optional<double> step_seconds,
                double allreduce_seconds);
  // An epoch ended at this training throughput.
  void Epoch(const RankLabels& rank, double images_per_second);
  // Its images per second drop to 0; its series stay for the retention, then disappear.
  void RankEnded(const RankLabels& rank);

 private:
  struct Impl;
  explicit WorkerMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ocs::worker::agent
