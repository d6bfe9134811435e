// Runs jobs on the fleet: gang-schedules pending jobs onto connected workers (all ranks start
// together, FIFO), hands out ranks and the rendezvous address, collects every rank's report at
// each epoch boundary, decides with common::PruneDecider (the same code the standalone worker
// uses) and sends every rank the same verdict, and ends jobs when their ranks finish or a worker
// is lost. Speaks plain structs; the gRPC session adapter translates. Recovery (ranks coming back,
// a decider replayed after a restart) is in job_runner_recovery.cc; how jobs ended is stored
// through JobEnds.
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
#include "server/job_ends.h"
#include "server/job_manager.h"
#include "server/job_store.h"
#include "server/progress_board.h"
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
  int64_t params = 0;
  double learning_rate = 0;
};

// How a rank ended.
struct RankOutcome {
  bool succeeded = false;
  // Failed for a reason outside the job (a peer or the connection went away): the job restarts
  // from its checkpoint while restarts are left, instead of failing.
  bool retryable = false;
  std::string message;
  // Failed out of memory at the job's own sizes: calls off a restart that a peer's report, heard
  // first, queued (a restart would meet the same wall).
  bool out_of_memory = false;
};

// A rank a worker still runs from before its session ended, claimed again when it reconnects.
struct RankClaim {
  std::string job_id;
  int attempt = 0;
  int rank = 0;
  int world_size = 0;
  std::string master;
  std::optional<RankReport> pending;    // its report still waiting for a verdict
  std::optional<RankOutcome> finished;  // it ended while the coordinator was away
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
  // `progress` (optional): rank 0's step progress, dropped when a job stops running.
  JobRunner(JobStore& store, WorkerRegistry& workers, Clock clock, int first_port, int ports,
            ProgressBoard* progress = nullptr);

  // A worker's session opened. Its claims re-attach ranks it still runs (after a coordinator
  // restart); a claim that no longer belongs (the job moved on, ended, or another worker holds
  // the rank) is cancelled on `link`, naming why. AlreadyExists, changing nothing, while another
  // session of `worker_id` is connected: workers register afresh for every session, so a second
  // one is a copy, and taking it would cut the live one off from its ranks.
  absl::Status Connect(const std::string& worker_id, WorkerLink* link,
                       const std::vector<RankClaim>& claims = {});
  // The lease ran out, or the worker left (it said goodbye): every job with a rank there is
  // stopped and, while it has restarts left (spec.maxRestarts), queued again to resume from its
  // newest checkpoint; otherwise it fails, naming the worker and `how` it went ("was lost").
  void Disconnect(const std::string& worker_id, const std::string& how);
  // The session closed, which a cut connection does too: the worker's ranks may still run and
  // claim their places again when it comes back. Each job with a rank there waits up to the
  // worker lease for it (ExpireReattachments), as after a coordinator restart.
  void Detach(const std::string& worker_id);
  // Starts the pending jobs that fit on the connected workers: higher spec.priority first, oldest
  // first within a priority; a job that does not fit, or whose restart waits for the fleet to
  // settle, holds the queue (no job overtakes it).
  void Schedule();
  // At start-up: jobs the store says were running may still run on their workers, which join
  // again and claim their ranks (Connect). Each is rebuilt from the store — its decider replayed
  // over the stored boundaries — and waits up to `grace_ms` for all its ranks; a job that cannot
  // be rebuilt goes back to the queue at once. Returns the ids of the jobs waiting.
  std::vector<std::string> AwaitReattachment(int64_t grace_ms);
  // Jobs whose ranks did not all come back within the grace: their claimed ranks are stopped and
  // they restart from their newest checkpoint while restarts are left (or fail). Returns their ids.
  std::vector<std::string> ExpireReattachments();
  // Stores the ends of jobs whose end the store refused before (a full disk, say): a job that
  // stopped running here must not stay running in the store with nothing running it. A job that
  // moved on meanwhile (cancelled through the API) is let go. Called once a second; returns the
  // ids stored now.
  std::vector<std::string> SettleEnds();
  // Starts the jobs whose restart after a peer's failure has waited for the fleet to settle (2 s).
  // Called once a second.
  void StartSettledRestarts();
  // InvalidArgument / FailedPrecondition / NotFound for a report that does not belong (unknown
  // job, a rank not on this worker, an epoch that is not the next one, a duplicate, a mask that
  // does not fit the model, a metric that is not a finite number); nothing changes then.
  absl::Status Report(const std::string& worker_id, const RankReport& report);
  absl::Status Finished(const std::string& worker_id, const std::string& job_id, int attempt,
                        int rank, const RankOutcome& outcome);
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
    std::string master;  // rank 0's c10d store: its port stays taken while the job runs
    // The verdict for next_epoch - 1, for a rank that re-attaches still waiting for it.
    std::optional<common::Verdict> last_verdict;
    // After a coordinator restart or a closed session: when the job stops waiting for unclaimed
    // ranks ("" in rank_workers), and why they went. 0 once every rank is back.
    int64_t reattach_deadline_ms = 0;
    std::string reattach_cause;
  };

  enum class Start { kStarted, kWaiting, kSkipped };
  static constexpr int kResumePoint = -1;
  // A job about to run: its decider fresh, its ranks not yet placed.
  static RunningJob NewRun(const JobRecord& record, const common::JobSpec& spec);
  static std::optional<std::string> Divergence(const RunningJob& run, int epoch);
  static std::vector<int> UnfinishedRanksOn(const RunningJob& run, const std::string& worker_id);
  // Whether `worker_id` runs `rank` of the ranks placed on `rank_workers`.
  static bool Holds(const std::vector<std::string>& rank_workers, int rank,
                    const std::string& worker_id);
  absl::Status CheckRank(const RunningJob& run, const std::string& worker_id, int attempt,
                         int rank) const;
  absl::Status ResumeAt(RunningJob& run, int epoch);
  static absl::StatusOr<std::optional<common::Verdict>> Replay(
      RunningJob& run, const std::vector<BoundaryRecord>& stored, int until_epoch);
  absl::StatusOr<RunningJob> Rebuild(const JobRecord& job);
  absl::Status Claim(const std::string& worker_id, const RankClaim& claim);
  absl::Status ReportLocked(const std::string& worker_id, const RankReport& report,
                            bool reattaching);
  absl::Status FinishedLocked(const std::string& worker_id, const std::string& job_id, int attempt,
                              int rank, const RankOutcome& outcome);
  bool LoseJob(const std::string& job_id, const std::string& why);
  bool CallOffRestart(const std::string& worker_id, const std::string& job_id, int attempt,
                      int rank, const std::string& message);
  BoundaryRecord Boundary(const RunningJob& run, const common::Verdict& verdict) const;
  void EnterPhase(RunningJob& run, const common::Verdict& verdict);
  Start TryStart(const JobRecord& job);
  void EndJob(const std::string& job_id, JobState state, const std::string& message);
  void RecordEnd(const std::string& job_id, JobState state, const std::string& message);
  std::string NextMaster(const std::string& host);

  JobStore& store_;
  WorkerRegistry& workers_;
  Clock clock_;
  ProgressBoard* progress_;
  const int first_port_, ports_;
  int next_port_ = 0;
  std::mutex mutex_;
  std::map<std::string, WorkerLink*> links_;   // connected sessions
  std::map<std::string, int> used_slots_;      // per worker
  std::map<std::string, RunningJob> running_;  // by job id
  JobEnds ends_;                               // how jobs ended, for the store
  std::map<std::string, int>
      pending_priorities_;  // spec.priority of the jobs pending at the last pass
  // A job a peer's failure sent back to the queue, until its restart starts: the restart waits
  // for the fleet to settle (kPeerLossSettleMs), and a rank of the lost attempt may call it off.
  struct QueuedRestart {
    int64_t after_ms = 0;  // not started before
    bool settled = false;  // the wait is over and the queue was scheduled
    int lost_attempt = 0;
    std::vector<std::string> rank_workers;  // of the lost attempt
  };
  std::map<std::string, QueuedRestart> queued_restarts_;  // by job id
};

}  // namespace ocs::server
