// Runs jobs on the fleet: gang-schedules pending jobs onto connected workers (all ranks start
// together, FIFO), hands out ranks and the rendezvous address, collects every rank's report at
// each epoch boundary, decides with common::PruneDecider (the same code the standalone worker
// uses) and sends every rank the same verdict, and ends jobs when their ranks finish or a worker
// is lost. Speaks plain structs; the gRPC session adapter translates.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/job_spec.h"
#include "common/mask.h"
#include "common/prune_decider.h"
#include "server/job_manager.h"
#include "server/job_store.h"
#include "server/worker_registry.h"

namespace ocs::server {

struct RankAssignment {
  std::string job_id;
  std::string spec_yaml;
  int rank = 0;
  int world_size = 1;
  std::string master;   // host:port of rank 0's c10d store
  int attempt = 0;      // the job's restarts so far
  bool resume = false;  // continue from the newest checkpoint
};

struct RankReport {
  std::string job_id;
  int rank = 0;
  int attempt = 0;
  int epoch = 0;
  std::optional<common::Mask> mask;  // rank 0, when a mask was due
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
  int64_t flops = 0;
  uint32_t weights_digest = 0;  // every rank must send the same
};

// The coordinator's side of one worker session.
class WorkerLink {
 public:
  virtual ~WorkerLink() = default;
  virtual void Assign(const RankAssignment& assignment) = 0;
  virtual void SendVerdict(const std::string& job_id, int attempt,
                           const common::Verdict& verdict) = 0;
  virtual void Cancel(const std::string& job_id, int attempt, const std::string& reason) = 0;
};

class JobRunner {
 public:
  JobRunner(JobStore& store, WorkerRegistry& workers, Clock clock, int first_port, int ports);

  void Connect(const std::string& worker_id, WorkerLink* link);
  // The session closed or the lease ran out: every job with a rank there is stopped and, while
  // it has restarts left (spec.maxRestarts), queued again to resume from its newest checkpoint;
  // otherwise it fails, naming the worker.
  void Disconnect(const std::string& worker_id);
  // Starts the pending jobs that fit on the connected workers: higher spec.priority first, oldest
  // first within a priority; a job that does not fit holds the queue (no job overtakes it).
  void Schedule();
  // At start-up: jobs the store says were running lost their ranks with the previous
  // coordinator; they go back to the queue and resume from their newest checkpoints once
  // workers join again. Returns their ids.
  std::vector<std::string> RequeueInterruptedJobs();
  // InvalidArgument / FailedPrecondition / NotFound for a report that does not belong (unknown
  // job, a rank not on this worker, an epoch that is not the next one, a duplicate, a mask that
  // does not fit the model, a metric that is not a finite number); nothing changes then.
  absl::Status Report(const std::string& worker_id, const RankReport& report);
  absl::Status Finished(const std::string& worker_id, const std::string& job_id, int attempt,
                        int rank, bool succeeded, const std::string& message);
  // OK when `worker_id` runs rank 0 of the job's current attempt: it may upload artifacts and
  // report step progress.
  absl::Status CheckRankZero(const std::string& worker_id, const std::string& job_id, int attempt);
  // Stores where the artifact is, stamped with the coordinator's clock.
  absl::Status RecordArtifact(const std::string& job_id, ArtifactRecord artifact);
  // A job was cancelled through the API: tell its ranks and free their slots.
  void Cancelled(const std::string& job_id, const std::string& reason);

 private:
  struct RunningJob {
    JobRecord record;
    common::JobSpec spec;
    std::unique_ptr<common::PruneDecider> decider;
    std::vector<int> group_sizes;           // channels per group of the job's model: masks must fit
    std::vector<std::string> rank_workers;  // worker of each rank
    int attempt = 0;
    // The boundary whose reports are being collected; kResumePoint after a restart, until the
    // first report says which checkpoint the ranks resumed from.
    int next_epoch = 0;
    std::map<int, uint32_t> digests;  // ranks that reported next_epoch: their digests
    RankReport rank0;                 // rank 0's report for next_epoch (metrics, mask)
    std::set<int> finished;
  };

  enum class Start { kStarted, kWaiting, kSkipped };
  static constexpr int kResumePoint = -1;
  static std::optional<std::string> Divergence(const RunningJob& run, int epoch);
  absl::Status CheckRank(const RunningJob& run, const std::string& worker_id, int attempt,
                         int rank) const;
  absl::Status ResumeAt(RunningJob& run, int epoch);
  BoundaryRecord Boundary(const RunningJob& run, const common::Verdict& verdict) const;
  void EnterPhase(RunningJob& run, const common::Verdict& verdict);
  Start TryStart(const JobRecord& job);
  void EndJob(const std::string& job_id, JobState state, const std::string& message);
  std::string NextMaster(const std::string& host);

  JobStore& store_;
  WorkerRegistry& workers_;
  Clock clock_;
  const int first_port_, ports_;
  int next_port_ = 0;
  std::mutex mutex_;
  std::map<std::string, WorkerLink*> links_;   // connected sessions
  std::map<std::string, int> used_slots_;      // per worker
  std::map<std::string, RunningJob> running_;  // by job id
};

}  // namespace ocs::server
