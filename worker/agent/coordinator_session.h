// The worker's connection to the coordinator: registration, heartbeats, and the session stream on
// which ranks are assigned, epoch reports go up and verdicts come down. gRPC only, never Torch:
// the trainer reaches it through train::DecisionSource (agent_decision_source.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/prune_decider.h"
#include "worker/train/decision_source.h"

namespace ocs::worker::agent {

struct Assignment {
  std::string job_id;
  std::string spec_yaml;
  int rank = 0;
  int world_size = 1;
  std::string master;
  int attempt = 0;      // the job's restarts so far; every message about the rank carries it
  bool resume = false;  // continue from the newest checkpoint
};

struct SessionOptions {
  std::string coordinator;  // host:port
  std::string host;         // this worker's address, for rank 0's rendezvous
  common::Device device = common::Device::kCpu;
  int slots = 1;
};

class CoordinatorSession {
 public:
  // Registers and opens the session; Unavailable when the coordinator cannot be reached,
  // InvalidArgument when it refuses the registration.
  static absl::StatusOr<std::unique_ptr<CoordinatorSession>> Open(const SessionOptions& options);
  ~CoordinatorSession();

  const std::string& worker_id() const { return worker_id_; }
  // The next rank to run; nullopt once the session has ended.
  std::optional<Assignment> NextAssignment();
  // Sends a rank's boundary report and waits for the coordinator's verdict for that boundary.
  // Cancelled when the job was cancelled, Unavailable when the session ended.
  absl::StatusOr<common::Verdict> Exchange(const Assignment& assignment,
                                           const train::BoundaryReport& report);
  void Finished(const Assignment& assignment, bool succeeded, const std::string& message);
  // Sends the file at `path` to the coordinator as the job's artifact `name` (rank 0, at the end
  // of training). The coordinator's status, prefixed with what was being uploaded, on failure.
  absl::Status Upload(const Assignment& assignment, const std::string& name,
                      const std::string& path);
  // Tells the coordinator how far rank 0 is within `epoch` (for people watching the job).
  void Progress(const Assignment& assignment, int epoch, int64_t step, int64_t steps);
  // Whether the rank should stop now: the coordinator cancelled its attempt, or the session
  // ended (a rank nobody will give verdicts to only holds its device).
  bool ShouldStop(const Assignment& assignment) const;

 private:
  struct Impl;
  explicit CoordinatorSession(std::unique_ptr<Impl> impl);
  void ReadLoop();
  void HeartbeatLoop();

  std::unique_ptr<Impl> impl_;
  std::string worker_id_;
};

}  // namespace ocs::worker::agent
