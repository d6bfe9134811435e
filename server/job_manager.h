// The coordinator core's job API: validation, identity and the job state machine over a JobStore.
// The gRPC JobService is a thin adapter over it; everything here speaks absl::Status.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "server/job_store.h"

namespace ocs::server {

using Clock = std::function<int64_t()>;  // milliseconds since the Unix epoch

class JobManager {
 public:
  JobManager(JobStore& store, Clock clock);

  // Validates the spec (InvalidArgument listing every problem), then stores it as pending.
  absl::StatusOr<JobRecord> Submit(absl::string_view spec_yaml, absl::string_view source);
  absl::StatusOr<JobRecord> Get(absl::string_view id);
  // page_size 0 means 50; more than 500 is InvalidArgument.
  absl::StatusOr<JobPage> List(const JobFilter& filter, int page_size,
                               absl::string_view page_token);
  // FailedPrecondition when the job already ended.
  absl::StatusOr<JobRecord> Cancel(absl::string_view id, absl::string_view reason);
  absl::StatusOr<std::vector<TransitionRecord>> History(absl::string_view id) {
    return store_.History(id);
  }
  absl::StatusOr<std::vector<BoundaryRecord>> Boundaries(absl::string_view id) {
    return store_.Boundaries(id);
  }
  absl::StatusOr<std::vector<ArtifactRecord>> Artifacts(absl::string_view id) {
    return store_.Artifacts(id);
  }

  // Called after a job was stored (to schedule it) and after one was cancelled (to stop its
  // ranks); set once, by the wiring in main.
  void OnSubmitted(std::function<void()> callback) { on_submitted_ = std::move(callback); }
  void OnCancelled(std::function<void(const std::string& id, const std::string& reason)> callback) {
    on_cancelled_ = std::move(callback);
  }

  static constexpr int kDefaultPageSize = 50;
  static constexpr int kMaxPageSize = 500;

 private:
  JobStore& store_;
  Clock clock_;
  std::function<void()> on_submitted_;
  std::function<void(const std::string&, const std::string&)> on_cancelled_;
};

// Milliseconds since the Unix epoch, from the system clock.
int64_t SystemClockMs();

}  // namespace ocs::server
