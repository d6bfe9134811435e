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
  // One training step took `seconds` (data, forward, backward, all-reduce and update).
  void Step(const RankLabels& rank, double seconds);
  // A step's gradient all-reduce took `seconds`: counted per step, so that its rate is smooth.
  // The serve command counts the steps it times with Step, so that the two divide into a share.
  void AllReduce(const RankLabels& rank, double seconds);
  // A step trained on `images` more images: counted per step, so that rate() is the throughput
  // as it happens, within an epoch too.
  void Trained(const RankLabels& rank, int64_t images);
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
