// The worker's connection to the coordinator: registration, heartbeats, and the session stream on
// which ranks are assigned, epoch reports go up and verdicts come down. gRPC only, never Torch:
// the trainer reaches it through train::DecisionSource (agent_decision_source.h).
//
// The session outlives its stream. When the coordinator goes away (a restart, a cut connection)
// the ranks keep training; the session registers again with backoff and claims them in its hello,
// each with the report still waiting for a verdict. The coordinator re-attaches them or cancels
// them (their job was restarted meanwhile). It ends for good when the coordinator refuses the
// worker, or when the worker leaves (Leave).
#pragma once

#include <atomic>
#include <chrono>
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

// Why a rank failed, which decides what the coordinator does with its job.
enum class RankFailure {
  kOfTheJob,   // the spec, the data, a diverged rank: the job fails
  kRetryable,  // outside the job (a peer died mid-collective): it restarts while restarts are left
  // The job's sizes do not fit the device's memory: it fails, even when a peer's retryable
  // report, heard first, sent it back to the queue.
  kOutOfMemory,
};

struct SessionOptions {
  std::string coordinator;  // host:port
  std::string host;         // this worker's address, for rank 0's rendezvous
  common::Device device = common::Device::kCpu;
  int slots = 1;
  // TLS (PEM files): the CA the coordinator's certificate chains to (empty: plaintext), and this
  // worker's own certificate and key when the coordinator wants client certificates.
  std::string tls_ca, tls_cert, tls_key;
  // How long rank 0 keeps offering an artifact the coordinator cannot take yet (unreachable, its
  // disk full) before the job fails. The file stays in the work folder either way.
  std::chrono::seconds upload_retry{600};
};

class CoordinatorSession {
 public:
  // A session that has not joined yet; InvalidArgument for TLS files that do not load.
  static absl::StatusOr<std::unique_ptr<CoordinatorSession>> Create(const SessionOptions& options);
  // Registers and opens the session: Unavailable when the coordinator cannot be reached (the
  // first registration waits up to 30 s), InvalidArgument when it refuses the registration,
  // Cancelled when the worker left meanwhile. Later outages are retried in the background.
  absl::Status Join();
  ~CoordinatorSession();

  // The id of the current registration (a new one after each reconnection).
  std::string worker_id() const;
  // Why the session ended for good; empty while it runs.
  std::string end_reason() const;
  // The next rank to run; nullopt once the session has ended for good.
  std::optional<Assignment> NextAssignment();
  // Sends a rank's boundary report and waits for the coordinator's verdict for that boundary,
  // across reconnections. Cancelled when the attempt was cancelled, Unavailable when the session
  // ended for good.
  absl::StatusOr<common::Verdict> Exchange(const Assignment& assignment,
                                           const train::BoundaryReport& report);
  // The rank ran to its end; or failed, `failure` saying whose fault it was.
  void Succeeded(const Assignment& assignment);
  void Failed(const Assignment& assignment, const std::string& message, RankFailure failure);
  // Sends the file at `path` to the coordinator as the job's artifact `name` (rank 0, at the end
  // of training). Tried again after a reconnection, and while the coordinator's disk is full,
  // for up to `upload_retry`. The coordinator's status, prefixed with what was being uploaded,
  // on failure.
  absl::Status Upload(const Assignment& assignment, const std::string& name,
                      const std::string& path);
  // Tells the coordinator how far rank 0 is within `epoch` (for people watching the job).
  void Progress(const Assignment& assignment, int epoch, int64_t step, int64_t steps);
  // Leaves the fleet on purpose (the worker was told to stop): tells the coordinator, which sends
  // the jobs of this worker's ranks back to the queue at once, and ends the session for good, so
  // that the ranks stop at their next step and no assignment starts.
  void Leave(const std::string& reason);
  // Whether the rank should stop now: the coordinator cancelled its attempt, or the session
  // ended for good (a rank nobody will give verdicts to only holds its device).
  bool ShouldStop(const Assignment& assignment) const;

 private:
  struct Impl;
  explicit CoordinatorSession(std::unique_ptr<Impl> impl);
  // Registers and opens a stream whose hello claims the ranks still running.
  absl::Status Connect();
  // Reads the stream until it closes, then connects again, until the session ends for good.
  void ConnectionLoop();
  void ReadLoop();
  void HeartbeatLoop();
  // `failure`: none when the rank succeeded.
  void Finished(const Assignment& assignment, const std::string& message,
                std::optional<RankFailure> failure);

  std::unique_ptr<Impl> impl_;
};

}  // namespace ocs::worker::agent
