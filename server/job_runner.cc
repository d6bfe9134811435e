#include "server/job_runner.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/crash_point.h"
#include "common/job_spec_yaml.h"
#include "common/log.h"
#include "worker/engine/job_model.h"

namespace ocs::server {

namespace {

// The channel-group sizes of the job's model (its masks must have exactly these); empty when the
// model cannot be built (validation rejects such a spec at submission).
std::vector<int> GroupSizes(const common::JobSpec& spec) {
  auto groups = worker::engine::JobChannelGroups(spec);
  return groups.ok() ? groups->sizes() : std::vector<int>{};
}

// Every number of the report that the boundary stores. SQLite keeps a NaN as NULL, which its
// NOT NULL columns refuse: a bad number must be named here, not surface as a store error.
absl::Status CheckMetrics(const RankReport& r) {
  for (const auto& [name, value] :
       {std::pair{"trainLoss", r.train_loss}, std::pair{"trainAccuracy", r.train_accuracy},
        std::pair{"testLoss", r.test_loss}, std::pair{"testAccuracy", r.test_accuracy},
        std::pair{"learningRate", r.learning_rate}}) {
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.job_id, " rank ", r.rank, " epoch ", r.epoch, ": ", name, " is ", value));
    }
  }
  return absl::OkStatus();
}

// A rank cut off from its peers is usually heard a moment before the dead peer's session closes;
// a restart placed at once could go to that worker and wait out its lease there. A SIGKILLed
// worker's session closes within milliseconds on a LAN.
constexpr int64_t kPeerLossSettleMs = 2000;

// Whether a restart due at `after_ms` still waits. A wall clock stepped back must not hold the
// queue for the size of the step.
bool Settling(int64_t now_ms, int64_t after_ms) {
  return now_ms < after_ms && after_ms - now_ms <= kPeerLossSettleMs;
}

}  // namespace

JobRunner::JobRunner(JobStore& store, WorkerRegistry& workers, Clock clock, int first_port,
                     int ports, ProgressBoard* progress)
    : store_(store),
      workers_(workers),
      clock_(std::move(clock)),
      progress_(progress),
      first_port_(first_port),
      ports_(ports),
      ends_(store) {}

JobRunner::RunningJob JobRunner::NewRun(const JobRecord& record, const common::JobSpec& spec) {
  RunningJob run;
  run.record = record;
  run.spec = spec;
  run.decider = std::make_unique<common::PruneDecider>(spec.stability, spec.regularization);
  run.group_sizes = GroupSizes(spec);
  run.attempt = record.restarts;
  return run;
}

absl::Status JobRunner::Connect(const std::string& worker_id, WorkerLink* link,
                                const std::vector<RankClaim>& claims) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!links_.emplace(worker_id, link).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("worker ", worker_id, " has a session open already: register anew"));
    }
    used_slots_.emplace(worker_id, 0);
    std::vector<const RankClaim*> attached;
    for (const RankClaim& claim : claims) {
      if (absl::Status status = Claim(worker_id, claim); !status.ok()) {
        // A rank that finished long ago, remembered in case this coordinator had restarted.
        if (claim.finished) continue;
        common::LogWarning(absl::StrCat("worker ", worker_id, ": ", status.message()),
                           {claim.job_id, claim.rank});
        link->Cancel(claim.job_id, claim.attempt, std::string(status.message()));
      } else {
        attached.push_back(&claim);
      }
    }
    // The reports after all the claims: a boundary may wait for several of this worker's ranks.
    for (const RankClaim* claim : attached) {
      absl::Status status;
      if (claim->pending) status = ReportLocked(worker_id, *claim->pending, /*reattaching=*/true);
      if (claim->finished && status.ok()) {
        status =
            FinishedLocked(worker_id, claim->job_id, claim->attempt, claim->rank, *claim->finished);
      }
      if (!status.ok()) {
        LoseJob(claim->job_id,
                absl::StrCat("re-attaching rank ", claim->rank, ": ", status.message()));
      }
    }
  }
  Schedule();
  return absl::OkStatus();
}

void JobRunner::Disconnect(const std::string& worker_id, const std::string& how) {
  std::vector<std::string> lost;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    links_.erase(worker_id);
    for (const auto& [id, job] : running_) {
      if (!UnfinishedRanksOn(job, worker_id).empty()) lost.push_back(id);
    }
    for (const std::string& id : lost) LoseJob(id, absl::StrCat("worker ", worker_id, " ", how));
    used_slots_.erase(worker_id);
  }
  Schedule();
}

bool JobRunner::Holds(const std::vector<std::string>& rank_workers, int rank,
                      const std::string& worker_id) {
  return rank >= 0 && rank < static_cast<int>(rank_workers.size()) &&
         rank_workers[rank] == worker_id;
}

// A rank that finished (rank 0 may still be uploading) loses nothing with its worker.
std::vector<int> JobRunner::UnfinishedRanksOn(const RunningJob& run, const std::string& worker_id) {
  std::vector<int> ranks;
  for (int rank = 0; rank < static_cast<int>(run.rank_workers.size()); ++rank) {
    if (run.rank_workers[rank] == worker_id && !run.finished.count(rank)) ranks.push_back(rank);
  }
  return ranks;
}

// Requires mutex_. The job's ranks stopped short of the end: it restarts from its newest
// checkpoint while restarts are left, or fails; `why` names what happened. True when it went back
// to the queue.
bool JobRunner::LoseJob(const std::string& job_id, const std::string& why) {
  const auto it = running_.find(job_id);
  if (it == running_.end()) return false;
  const int restarts = it->second.record.restarts, allowed = it->second.spec.max_restarts;
  if (restarts < allowed) {
    EndJob(job_id, JobState::kPending,
           absl::StrCat(why, "; restart ", restarts + 1, " of ", allowed,
                        " resumes from the newest checkpoint"));
    return true;
  }
  EndJob(job_id, JobState::kFailed,
         absl::StrCat(why, " after ", restarts, " restart(s); spec.maxRestarts is ", allowed));
  return false;
}

// Requires mutex_. A rank of an attempt that a peer's failure sent back to the queue ran out of
// memory at the job's own sizes: the restart would meet the same wall, so the job fails instead.
// That rank's report usually comes first, since it goes out before the rank leaves its process
// group; this is for when a peer's comes first. Only until the restart starts: a later report
// belongs to an attempt replaced. True when it applied.
bool JobRunner::CallOffRestart(const std::string& worker_id, const std::string& job_id, int attempt,
                               int rank, const std::string& message) {
  const auto it = queued_restarts_.find(job_id);
  if (it == queued_restarts_.end()) return false;
  const QueuedRestart& lost = it->second;
  if (attempt != lost.lost_attempt || !Holds(lost.rank_workers, rank, worker_id)) return false;
  queued_restarts_.erase(it);
  RecordEnd(job_id, JobState::kFailed,
            absl::StrCat("rank ", rank, ": ", message,
                         "; the restart that a peer's failure queued is called off"));
  return true;
}

// The next rendezvous port in turn, skipping those that running jobs' stores hold.
std::string JobRunner::NextMaster(const std::string& host) {
  std::set<std::string> taken;
  for (const auto& [id, run] : running_) taken.insert(run.master);
  std::string master;
  for (int tries = 0; tries < ports_; ++tries) {
    master = absl::StrCat(host, ":", first_port_ + next_port_);
    next_port_ = (next_port_ + 1) % ports_;
    if (!taken.count(master)) break;
  }
  return master;
}

JobRunner::Start JobRunner::TryStart(const JobRecord& job) {
  if (const auto queued = queued_restarts_.find(job.id);
      queued != queued_restarts_.end() && Settling(clock_(), queued->second.after_ms)) {
    return Start::kWaiting;  // holds the queue like a job that does not fit
  }
  // It failed, or was queued again, and the store has yet to take that: not a job to start.
  if (ends_.HasRefusedEnd(job.id)) return Start::kSkipped;
  auto spec = common::ParseJobSpec(job.spec_yaml, job.id);
  if (!spec.ok()) {  // stored specs are canonical; this means the store was tampered with
    (void)store_.Transition(job.id, JobState::kCancelled, spec.status().message(), clock_());
    queued_restarts_.erase(job.id);
    return Start::kSkipped;
  }
  // Gang scheduling: every rank gets a slot now, or the job waits.
  std::vector<std::string> ranks;
  for (const WorkerInfo& worker : workers_.List()) {
    if (!links_.count(worker.id) || worker.device != spec->resources.device) continue;
    const int free = worker.slots - used_slots_[worker.id];
    for (int s = 0; s < free && static_cast<int>(ranks.size()) < spec->resources.workers; ++s) {
      ranks.push_back(worker.id);
    }
  }
  if (static_cast<int>(ranks.size()) < spec->resources.workers) return Start::kWaiting;
  auto running = store_.Transition(job.id, JobState::kScheduled, "", clock_());
  if (!running.ok()) return Start::kSkipped;  // cancelled meanwhile
  std::string host;
  for (const WorkerInfo& worker : workers_.List()) {
    if (worker.id == ranks[0]) host = worker.host;
  }
  queued_restarts_.erase(job.id);
  RunningJob& run = running_[job.id] = NewRun(*running, *spec);
  run.rank_workers = ranks;
  // A job that ran before resumes from its newest checkpoint; which one, its first report says.
  auto stored = store_.Boundaries(job.id);
  const bool resume = run.attempt > 0 || (stored.ok() && !stored->empty());
  run.next_epoch = resume ? kResumePoint : 0;
  const std::string master = NextMaster(host);
  run.master = master;
  for (int rank = 0; rank < static_cast<int>(ranks.size()); ++rank) {
    ++used_slots_[ranks[rank]];
    workers_.AdjustFreeSlots(ranks[rank], -1);
    links_[ranks[rank]]->Assign(
        {job.id, job.spec_yaml, rank, static_cast<int>(ranks.size()), master, run.attempt, resume});
  }
  common::LogInfo(absl::StrCat("started: ", ranks.size(), " ranks, rendezvous ", master,
                               ", attempt ", run.attempt, resume ? ", resuming" : ""),
                  {job.id});
  return Start::kStarted;
}

void JobRunner::Schedule() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<JobRecord> pending = ListAllJobs(store_, {{JobState::kPending}, {}});
  std::reverse(pending.begin(), pending.end());  // oldest first
  // A job's priority is parsed from its spec once, not at every pass: a long queue made each
  // pass parse every pending spec many times over.
  std::map<std::string, int> priorities;
  for (const JobRecord& job : pending) {
    const auto known = pending_priorities_.find(job.id);
    if (known != pending_priorities_.end()) {
      priorities.insert(*known);
    } else {
      auto spec = common::ParseJobSpec(job.spec_yaml, job.id);
      priorities[job.id] = spec.ok() ? spec->priority : 0;
    }
  }
  pending_priorities_ = std::move(priorities);  // only the jobs still pending
  std::stable_sort(pending.begin(), pending.end(), [this](const JobRecord& a, const JobRecord& b) {
    return pending_priorities_.at(a.id) > pending_priorities_.at(b.id);
  });
  for (const JobRecord& job : pending) {
    if (TryStart(job) == Start::kWaiting) break;  // FIFO: a job that does not fit holds the queue
  }
}

absl::Status JobRunner::Report(const std::string& worker_id, const RankReport& report) {
  std::lock_guard<std::mutex> lock(mutex_);
  return ReportLocked(worker_id, report, /*reattaching=*/false);
}

// Requires mutex_.
absl::Status JobRunner::ReportLocked(const std::string& worker_id, const RankReport& report,
                                     bool reattaching) {
  const auto it = running_.find(report.job_id);
  if (it == running_.end()) {
    return absl::NotFoundError(absl::StrCat("no running job \"", report.job_id, "\""));
  }
  RunningJob& run = it->second;
  if (absl::Status status = CheckRank(run, worker_id, report.attempt, report.rank); !status.ok()) {
    return status;
  }
  if (run.next_epoch == kResumePoint) {
    if (absl::Status status = ResumeAt(run, report.epoch); !status.ok()) return status;
  }
  // A rank that re-attached still waiting for a verdict given before the restart hears it again.
  if (reattaching && run.last_verdict && report.epoch == run.last_verdict->epoch) {
    links_.at(worker_id)->SendVerdict(report.job_id, run.attempt, *run.last_verdict);
    return absl::OkStatus();
  }
  // One whose report arrived before its session closed: the claim repeats it.
  if (reattaching && report.epoch == run.next_epoch && run.digests.count(report.rank)) {
    return absl::OkStatus();
  }
  if (report.epoch != run.next_epoch) {
    return absl::FailedPreconditionError(absl::StrCat(report.job_id, ": report for epoch ",
                                                      report.epoch, ", expected ", run.next_epoch));
  }
  if (absl::Status metrics = CheckMetrics(report); !metrics.ok()) return metrics;
  if (report.mask) {
    if (absl::Status fits = common::CheckMaskFitsModel(*report.mask, run.group_sizes); !fits.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          report.job_id, " rank ", report.rank, " epoch ", report.epoch, ": ", fits.message()));
    }
  }
  if (run.digests.count(report.rank)) {
    return absl::AlreadyExistsError(absl::StrCat(report.job_id, ": rank ", report.rank,
                                                 " already reported epoch ", report.epoch));
  }
  if (report.rank == 0) run.rank0 = report;
  run.digests[report.rank] = report.weights_digest;
  if (run.digests.size() < run.rank_workers.size()) return absl::OkStatus();

  // Every rank is at the boundary. Ranks that silently diverged would make every later decision
  // meaningless: the job fails, naming them.
  if (auto divergence = Divergence(run, report.epoch)) {
    EndJob(report.job_id, JobState::kFailed, *divergence);
    return absl::OkStatus();
  }
  // One decision, sent to all of them.
  auto verdict = run.decider->Decide(report.epoch, run.rank0.mask);
  if (!verdict.ok()) {
    const std::string message =
        absl::StrCat("epoch ", report.epoch, ": ", verdict.status().message());
    EndJob(report.job_id, JobState::kFailed, message);
    return absl::OkStatus();
  }
  // Stored before any rank hears of it: a restarted coordinator knows every verdict it gave.
  if (absl::Status stored = store_.AddBoundary(report.job_id, Boundary(run, *verdict));
      !stored.ok()) {
    EndJob(report.job_id, JobState::kFailed,
           absl::StrCat("epoch ", report.epoch, ": ", stored.message()));
    return absl::OkStatus();
  }
  common::CrashPoint(common::crash_point::kBoundaryStored);
  run.digests.clear();
  run.rank0 = {};
  run.last_verdict = *verdict;
  EnterPhase(run, *verdict);
  ++run.next_epoch;
  // Once per worker: a worker running several ranks hands the verdict to each of them.
  const std::set<std::string> workers(run.rank_workers.begin(), run.rank_workers.end());
  for (const std::string& worker : workers) {
    if (links_.count(worker)) links_[worker]->SendVerdict(report.job_id, run.attempt, *verdict);
  }
  return absl::OkStatus();
}

absl::Status JobRunner::CheckRankZero(const std::string& worker_id, const std::string& job_id,
                                      int attempt) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = running_.find(job_id);
  if (it == running_.end()) {
    return absl::NotFoundError(absl::StrCat("no running job \"", job_id, "\""));
  }
  return CheckRank(it->second, worker_id, attempt, 0);
}

absl::Status JobRunner::RecordArtifact(const std::string& job_id, ArtifactRecord artifact) {
  artifact.time_ms = clock_();
  return store_.PutArtifact(job_id, artifact);
}

std::optional<std::string> JobRunner::Divergence(const RunningJob& run, int epoch) {
  const uint32_t reference = run.digests.at(0);
  std::vector<std::string> differing;
  for (const auto& [rank, digest] : run.digests) {
    if (digest != reference) differing.push_back(absl::StrFormat("rank %d has %08x", rank, digest));
  }
  if (differing.empty()) return std::nullopt;
  return absl::StrFormat(
      "ranks diverged at the boundary before epoch %d: rank 0's weights digest is %08x, %s", epoch,
      reference, absl::StrJoin(differing, ", "));
}

// The job's state follows the phase each verdict starts (dense, sparsity learning, pruned), each
// change stored with the epoch it happened at.
void JobRunner::EnterPhase(RunningJob& run, const common::Verdict& verdict) {
  JobState phase = JobState::kDense;
  if (verdict.phase == common::Phase::kSparsity) phase = JobState::kSparsityLearning;
  if (verdict.phase == common::Phase::kPruned) phase = JobState::kPruned;
  if (phase == run.record.state) return;
  auto moved = store_.Transition(
      run.record.id, phase, absl::StrCat("at the boundary before epoch ", verdict.epoch), clock_());
  if (moved.ok()) run.record = *moved;
}

BoundaryRecord JobRunner::Boundary(const RunningJob& run, const common::Verdict& verdict) const {
  const RankReport& r = run.rank0;
  BoundaryRecord b;
  b.epoch = verdict.epoch;
  b.phase = common::ToString(verdict.phase);
  b.prune = verdict.kind == common::Verdict::Kind::kPrune;
  b.lambda = verdict.lambda;
  if (verdict.point) b.j = verdict.point->j, b.j_bar = verdict.point->j_bar;
  b.train_loss = r.train_loss, b.train_accuracy = r.train_accuracy;
  b.test_loss = r.test_loss, b.test_accuracy = r.test_accuracy;
  b.flops = r.flops, b.params = r.params;
  b.learning_rate = r.learning_rate;
  if (r.mask) b.mask = common::EncodeMask(*r.mask);
  b.time_ms = clock_();
  b.attempt = run.attempt;
  return b;
}

absl::Status JobRunner::CheckRank(const RunningJob& run, const std::string& worker_id, int attempt,
                                  int rank) const {
  if (attempt != run.attempt) {
    return absl::FailedPreconditionError(absl::StrCat(
        run.record.id, ": attempt ", attempt, " was stopped; attempt ", run.attempt, " runs now"));
  }
  if (!Holds(run.rank_workers, rank, worker_id)) {
    return absl::PermissionDeniedError(
        absl::StrCat("rank ", rank, " of ", run.record.id, " is not assigned to ", worker_id));
  }
  return absl::OkStatus();
}

absl::Status JobRunner::Finished(const std::string& worker_id, const std::string& job_id,
                                 int attempt, int rank, const RankOutcome& outcome) {
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status = FinishedLocked(worker_id, job_id, attempt, rank, outcome);
  }
  Schedule();
  return status;
}

// Requires mutex_.
absl::Status JobRunner::FinishedLocked(const std::string& worker_id, const std::string& job_id,
                                       int attempt, int rank, const RankOutcome& outcome) {
  const auto it = running_.find(job_id);
  if (it == running_.end()) {
    if (outcome.out_of_memory && !outcome.retryable &&
        CallOffRestart(worker_id, job_id, attempt, rank, outcome.message)) {
      return absl::OkStatus();
    }
    return absl::NotFoundError(absl::StrCat("no running job \"", job_id, "\""));
  }
  RunningJob& run = it->second;
  if (absl::Status status = CheckRank(run, worker_id, attempt, rank); !status.ok()) return status;
  if (!outcome.succeeded) {
    const std::string why = absl::StrCat("rank ", rank, ": ", outcome.message);
    if (!outcome.retryable) {
      EndJob(job_id, JobState::kFailed, why);
      return absl::OkStatus();
    }
    QueuedRestart queued{clock_() + kPeerLossSettleMs, false, run.attempt, run.rank_workers};
    if (LoseJob(job_id, why)) queued_restarts_[job_id] = std::move(queued);
  } else {
    run.finished.insert(rank);
    if (run.finished.size() == run.rank_workers.size()) EndJob(job_id, JobState::kSucceeded, "");
  }
  return absl::OkStatus();
}

void JobRunner::Cancelled(const std::string& job_id, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queued_restarts_.erase(job_id);
    const auto it = running_.find(job_id);
    if (it == running_.end()) return;
    const std::set<std::string> workers(it->second.rank_workers.begin(),
                                        it->second.rank_workers.end());
    for (const std::string& worker : workers) {
      if (links_.count(worker)) links_[worker]->Cancel(job_id, it->second.attempt, reason);
    }
    for (const std::string& worker : it->second.rank_workers) {
      if (used_slots_.count(worker)) --used_slots_[worker];
      workers_.AdjustFreeSlots(worker, +1);
    }
    running_.erase(it);
    if (progress_) progress_->Clear(job_id);
  }
  Schedule();
}

// Requires mutex_. Frees the job's slots; the ranks of a job that failed or goes back to the
// queue are told to stop.
void JobRunner::EndJob(const std::string& job_id, JobState state, const std::string& message) {
  const auto it = running_.find(job_id);
  if (it == running_.end()) return;
  if (state != JobState::kSucceeded) {
    const std::set<std::string> workers(it->second.rank_workers.begin(),
                                        it->second.rank_workers.end());
    for (const std::string& worker : workers) {
      if (links_.count(worker)) links_[worker]->Cancel(job_id, it->second.attempt, message);
    }
  }
  for (const std::string& worker : it->second.rank_workers) {
    if (used_slots_.count(worker)) --used_slots_[worker];
    workers_.AdjustFreeSlots(worker, +1);
  }
  running_.erase(it);
  if (progress_) progress_->Clear(job_id);
  RecordEnd(job_id, state, message);
}

// Requires mutex_. Logs how the job ended (loudly unless it succeeded) and stores it.
void JobRunner::RecordEnd(const std::string& job_id, JobState state, const std::string& message) {
  if (state == JobState::kFailed) common::LogError(absl::StrCat("failed: ", message), {job_id});
  if (state == JobState::kPending) common::LogWarning(message, {job_id});
  ends_.Settle(job_id, state, message, clock_());
}

void JobRunner::StartSettledRestarts() {
  bool due = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The entries stay until their jobs start (TryStart) or are cancelled.
    for (auto& [id, queued] : queued_restarts_) {
      if (queued.settled || Settling(clock_(), queued.after_ms)) continue;
      queued.settled = due = true;
    }
  }
  if (due) Schedule();
}

std::vector<std::string> JobRunner::SettleEnds() {
  std::vector<std::string> settled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    settled = ends_.Retry();
  }
  if (!settled.empty()) Schedule();  // a job back in the queue may start now
  return settled;
}

}  // namespace ocs::server
