// A real ocs cluster on loopback for integration tests and the soak: one coordinator and any
// number of `ocs-worker serve` processes, each a real process logging to its own file under one
// folder, and a Job API client that rides out coordinator restarts.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {

// A small resnet20 job on synthetic data for `workers` CPU ranks.
std::string SmallJobYaml(const std::string& name, int workers, int epochs = 4,
                         int checkpoint_every = 0);
// Eight epochs with a checkpoint after each, two ranks: long enough to be interrupted mid-run.
std::string RestartableJobYaml(const std::string& name);

// What the coordinator stored for a job against what it must hold: every boundary 0..epochs-1
// exactly once and in order, and exactly one prune.
struct BoundaryAudit {
  int stored = 0;
  int missing = 0;
  int duplicated = 0;
  int out_of_order = 0;
  int prunes = 0;
  bool intact() const { return missing == 0 && duplicated == 0 && out_of_order == 0; }
};
BoundaryAudit AuditBoundaries(const ocs::v1::GetStabilityResponse& stability, int epochs);

bool Terminal(ocs::v1::JobState state);

struct WorkerOptions {
  int slots = 1;
  bool shared = true;       // dir/shared, the work folder a deployment mounts
  std::string coordinator;  // empty: the cluster's coordinator address
  std::vector<std::string> extra_flags;
  std::vector<std::string> environment;  // KEY=VALUE, e.g. OCS_CRASH_AT=worker-pruned
  int64_t memory_limit_bytes = 0;        // its private memory (WithMemoryLimit); 0: unlimited
};

class LoopbackCluster {
 public:
  // Creates (empties) `dir`; picks the coordinator's address and rendezvous ports.
  explicit LoopbackCluster(std::string dir);

  // A coordinator on address() with its store in dir()/coordinator; start n logs to
  // dir()/coordinator<n>.log. Waits until it accepts calls.
  absl::Status StartCoordinator(const std::vector<std::string>& extra_flags = {},
                                const std::vector<std::string>& environment = {});
  // Kills the coordinator (SIGKILL) and reaps it.
  void KillCoordinator();
  // Worker n logs to dir()/worker<n>.log.
  Subprocess& StartWorker(const WorkerOptions& options = {});

  absl::StatusOr<std::string> Submit(const std::string& yaml);
  absl::StatusOr<ocs::v1::Job> Get(const std::string& id);
  // One attempt with a short deadline: for polling while the coordinator may die.
  absl::StatusOr<ocs::v1::Job> GetOnce(const std::string& id, std::chrono::milliseconds deadline);
  absl::StatusOr<ocs::v1::GetStabilityResponse> Stability(const std::string& id);
  absl::StatusOr<std::string> Download(const std::string& id, const std::string& name);
  // Polls until the job is terminal or `timeout` passes; the last state seen.
  absl::StatusOr<ocs::v1::Job> WaitForEnd(const std::string& id, std::chrono::seconds timeout);
  // Until the coordinator has stored `count` boundaries of the job.
  bool WaitForBoundaries(const std::string& id, int count,
                         std::chrono::seconds timeout = std::chrono::seconds(120));

  const std::string& dir() const { return dir_; }
  const std::string& address() const { return address_; }
  Subprocess& coordinator() { return *coordinator_; }
  ocs::v1::JobService::Stub& jobs() { return *jobs_; }
  Subprocess& worker(int n) { return *workers_.at(n); }
  int workers() const { return static_cast<int>(workers_.size()); }
  // The log of the n-th coordinator start, of worker n, and all of them together.
  std::string CoordinatorLog(int start) const;
  // The current coordinator's /metrics exposition ("" when it cannot be read).
  std::string CoordinatorMetrics() const;
  std::string WorkerLog(int n) const;
  std::string Logs() const;

 private:
  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(grpc::Status (ocs::v1::JobService::Stub::*rpc)(
                                     grpc::ClientContext*, const Request&, Response*),
                                 const Request& request);

  std::string dir_, address_;
  int rendezvous_port_ = 0;
  int coordinator_starts_ = 0;
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ocs::v1::JobService::Stub> jobs_;
};

}  // namespace ocs::testing
