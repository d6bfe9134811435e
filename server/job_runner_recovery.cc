// JobRunner's recovery: ranks that come back after their worker's session closed or after a
// coordinator restart (Claim, Detach, AwaitReattachment, ExpireReattachments), and a restarted
// job's decider brought back to where it was from the stored boundaries (ResumeAt, Replay).
// The rest of JobRunner is in job_runner.cc.
#include "server/job_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/job_spec_yaml.h"
#include "common/log.h"

namespace ocs::server {

absl::Status JobRunner::Claim(const std::string& worker_id, const RankClaim& claim) {
  const auto it = running_.find(claim.job_id);
  if (it == running_.end()) {
    return absl::NotFoundError(
        absl::StrCat("job ", claim.job_id, " does not run any more: rank ", claim.rank, " stops"));
  }
  RunningJob& run = it->second;
  if (claim.attempt != run.attempt) {
    return absl::FailedPreconditionError(absl::StrCat(claim.job_id, ": attempt ", claim.attempt,
                                                      " was stopped; attempt ", run.attempt,
                                                      " runs now"));
  }
  const int world_size = static_cast<int>(run.rank_workers.size());
  if (claim.world_size != world_size || claim.rank < 0 || claim.rank >= world_size) {
    return absl::InvalidArgumentError(absl::StrCat(claim.job_id, ": rank ", claim.rank, " of ",
                                                   claim.world_size, " does not fit its ",
                                                   world_size, " ranks"));
  }
  std::string& holder = run.rank_workers[claim.rank];
  if (!holder.empty()) {
    return absl::AlreadyExistsError(
        absl::StrCat(claim.job_id, ": rank ", claim.rank, " is held by ", holder));
  }
  holder = worker_id;
  ++used_slots_[worker_id];
  workers_.AdjustFreeSlots(worker_id, -1);
  if (run.master.empty()) run.master = claim.master;
  if (std::count(run.rank_workers.begin(), run.rank_workers.end(), "") == 0) {
    run.reattach_deadline_ms = 0;
    common::LogInfo(absl::StrCat("re-attached: all ", world_size, " ranks are back"),
                    {claim.job_id});
  }
  return absl::OkStatus();
}

void JobRunner::Detach(const std::string& worker_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    links_.erase(worker_id);
    used_slots_.erase(worker_id);
    const int64_t deadline = clock_() + int64_t{1000} * workers_.lease_seconds();
    for (auto& [id, run] : running_) {
      const std::vector<int> held = UnfinishedRanksOn(run, worker_id);
      if (held.empty()) continue;
      for (int rank : held) run.rank_workers[rank].clear();
      if (run.reattach_deadline_ms == 0) {
        run.reattach_deadline_ms = deadline;
        run.reattach_cause = absl::StrCat("worker ", worker_id, "'s session closed");
      }
      common::LogWarning(absl::StrCat("worker ", worker_id, "'s session closed; its ranks have ",
                                      workers_.lease_seconds(), " s to re-attach"),
                         {id});
    }
  }
  Schedule();
}

std::vector<std::string> JobRunner::AwaitReattachment(int64_t grace_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> waiting;
  for (const JobRecord& job :
       ListAllJobs(store_, {{std::begin(kActiveStates), std::end(kActiveStates)}, {}})) {
    auto run = Rebuild(job);
    if (!run.ok()) {
      ends_.Settle(job.id, JobState::kPending,
                   absl::StrCat("the coordinator restarted and could not take the job up again (",
                                run.status().message(), "); it resumes from its newest checkpoint"),
                   clock_());
      continue;
    }
    run->reattach_deadline_ms = clock_() + grace_ms;
    run->reattach_cause = "the coordinator restarted";
    running_.emplace(job.id, *std::move(run));
    waiting.push_back(job.id);
  }
  return waiting;
}

// A running job as the store knows it, waiting for its ranks to be claimed. Its ranks are at
// most one boundary past the newest verdict of their attempt; with none yet in this attempt they
// all wait at the checkpoint they resumed from, which their first report names (kResumePoint).
absl::StatusOr<JobRunner::RunningJob> JobRunner::Rebuild(const JobRecord& job) {
  auto spec = common::ParseJobSpec(job.spec_yaml, job.id);
  if (!spec.ok()) return spec.status();
  auto stored = store_.Boundaries(job.id);
  if (!stored.ok()) return stored.status();
  RunningJob run = NewRun(job, *spec);
  run.rank_workers.assign(spec->resources.workers, "");
  run.next_epoch = kResumePoint;
  if (!stored->empty() && stored->back().attempt == run.attempt) {
    auto last = Replay(run, *stored, stored->back().epoch + 1);
    if (!last.ok()) return last.status();
    run.last_verdict = *last;
    run.next_epoch = stored->back().epoch + 1;
  }
  return run;
}

std::vector<std::string> JobRunner::ExpireReattachments() {
  std::vector<std::string> expired;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t now = clock_();
    for (const auto& [id, run] : running_) {
      if (run.reattach_deadline_ms != 0 && now >= run.reattach_deadline_ms) expired.push_back(id);
    }
    for (const std::string& id : expired) {
      const RunningJob& run = running_.at(id);
      std::vector<int> missing;
      for (int rank = 0; rank < static_cast<int>(run.rank_workers.size()); ++rank) {
        if (run.rank_workers[rank].empty()) missing.push_back(rank);
      }
      LoseJob(id, absl::StrCat(run.reattach_cause, " and rank(s) ", absl::StrJoin(missing, ", "),
                               " did not re-attach in time"));
    }
  }
  if (!expired.empty()) Schedule();
  return expired;
}

// The first report after a restart names the boundary the ranks resumed at. The decisions before
// it are replayed from the store (the decider is deterministic in the masks it saw), and the
// stored boundaries from it on are dropped: they belong to the run that was rolled back, and the
// resumed ranks decide them again. The stored series stays the one the final model went through.
absl::Status JobRunner::ResumeAt(RunningJob& run, int epoch) {
  auto stored = store_.Boundaries(run.record.id);
  if (!stored.ok()) return stored.status();
  if (epoch < 0 || epoch > static_cast<int>(stored->size())) {
    return absl::FailedPreconditionError(absl::StrCat(run.record.id, ": resumed at epoch ", epoch,
                                                      " but only ", stored->size(),
                                                      " boundaries were decided"));
  }
  if (auto replayed = Replay(run, *stored, epoch); !replayed.ok()) return replayed.status();
  if (absl::Status dropped = store_.DropBoundariesFrom(run.record.id, epoch); !dropped.ok()) {
    return dropped;
  }
  common::LogInfo(absl::StrCat("attempt ", run.attempt, " resumed at epoch ", epoch),
                  {run.record.id, -1, epoch});
  run.next_epoch = epoch;
  return absl::OkStatus();
}

// A fresh decider fed the stored boundaries before `until_epoch` is where the job's decider was
// (it is deterministic in the masks it saw). Returns the last verdict replayed.
absl::StatusOr<std::optional<common::Verdict>> JobRunner::Replay(
    RunningJob& run, const std::vector<BoundaryRecord>& stored, int until_epoch) {
  run.decider = std::make_unique<common::PruneDecider>(run.spec.stability, run.spec.regularization);
  std::optional<common::Verdict> last;
  for (const BoundaryRecord& b : stored) {
    if (b.epoch >= until_epoch) break;
    std::optional<common::Mask> mask;
    if (!b.mask.empty()) {
      auto decoded = common::DecodeMask(b.mask);
      if (!decoded.ok()) return decoded.status();
      mask = *std::move(decoded);
    }
    auto replayed = run.decider->Decide(b.epoch, mask);
    if (!replayed.ok()) return replayed.status();
    last = *std::move(replayed);
  }
  return last;
}

}  // namespace ocs::server
