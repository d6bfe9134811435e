// The latest step progress of each running job, as rank 0's worker reports it: in memory only
// (it is stale a moment later), written by the worker sessions, read by WatchJob.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace ocs::server {

struct StepProgress {
  int epoch = 0;
  int64_t step = 0, steps = 0;
  bool operator==(const StepProgress&) const = default;
};

class ProgressBoard {
 public:
  void Set(const std::string& job_id, const StepProgress& progress) {
    std::lock_guard<std::mutex> lock(mutex_);
    latest_[job_id] = progress;
  }
  std::optional<StepProgress> Get(const std::string& job_id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = latest_.find(job_id);
    if (it == latest_.end()) return std::nullopt;
    return it->second;
  }
  void Clear(const std::string& job_id) {
    std::lock_guard<std::mutex> lock(mutex_);
    latest_.erase(job_id);
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, StepProgress> latest_;
};

}  // namespace ocs::server
