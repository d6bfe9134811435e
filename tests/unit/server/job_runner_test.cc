// The coordinator's job runner with in-process worker links over a real SQLite store: the checks
// every epoch report passes, and the verdict every rank receives.
#include "server/job_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "server/sqlite_job_store.h"

namespace ocs::server {
namespace {

using ::testing::HasSubstr;

class FakeLink final : public WorkerLink {
 public:
  void Assign(const RankAssignment& assignment) override { assignments.push_back(assignment); }
  void SendVerdict(const std::string&, int, const common::Verdict& verdict) override {
    verdicts.push_back(verdict);
  }
  void Cancel(const std::string&, int, const std::string& reason) override {
    cancels.push_back(reason);
  }

  std::vector<RankAssignment> assignments;
  std::vector<common::Verdict> verdicts;
  std::vector<std::string> cancels;
};

// The SQLite store, whose state changes can be made to fail as on a full disk.
class FlakyStore final : public JobStore {
 public:
  explicit FlakyStore(JobStore& store) : store_(store) {}

  absl::Status Create(const JobRecord& job) override { return store_.Create(job); }
  absl::StatusOr<JobRecord> Get(absl::string_view id) override { return store_.Get(id); }
  absl::StatusOr<JobPage> List(const JobFilter& filter, int page_size,
                               absl::string_view page_token) override {
    return store_.List(filter, page_size, page_token);
  }
  absl::StatusOr<std::vector<JobRecord>> RecentlyEnded(int64_t since_ms, int limit) override {
    return store_.RecentlyEnded(since_ms, limit);
  }
  absl::StatusOr<std::map<JobState, int64_t>> CountByState() override {
    return store_.CountByState();
  }
  absl::StatusOr<JobRecord> Transition(absl::string_view id, JobState to, absl::string_view message,
                                       int64_t now_ms) override {
    if (refuse_transitions) return absl::UnavailableError("job store: update: disk I/O error");
    return store_.Transition(id, to, message, now_ms);
  }
  absl::StatusOr<std::vector<TransitionRecord>> History(absl::string_view id) override {
    return store_.History(id);
  }
  absl::Status AddBoundary(absl::string_view id, const BoundaryRecord& boundary) override {
    return store_.AddBoundary(id, boundary);
  }
  absl::Status DropBoundariesFrom(absl::string_view id, int epoch) override {
    return store_.DropBoundariesFrom(id, epoch);
  }
  absl::Status PutArtifact(absl::string_view id, const ArtifactRecord& artifact) override {
    return store_.PutArtifact(id, artifact);
  }
  absl::StatusOr<std::vector<ArtifactRecord>> Artifacts(absl::string_view id) override {
    return store_.Artifacts(id);
  }
  absl::StatusOr<std::vector<BoundaryRecord>> Boundaries(absl::string_view id) override {
    return store_.Boundaries(id);
  }

  bool refuse_transitions = false;

 private:
  JobStore& store_;
};

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path =
        absl::StrCat(::testing::TempDir(), "/runner-",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    std::filesystem::remove(path);
    store_ = *SqliteJobStore::Open(path);
    flaky_ = std::make_unique<FlakyStore>(*store_);
    manager_ = std::make_unique<JobManager>(*store_, clock_);
    runner_ = std::make_unique<JobRunner>(*flaky_, registry_, clock_, 29000, 100, &progress_);
    for (int i = 0; i < 2; ++i) {
      workers_.push_back(registry_.Register("127.0.0.1", common::Device::kCpu, 1, "0.1.0")->id);
      ASSERT_TRUE(runner_->Connect(workers_.back(), &links_[i]).ok());
    }
    job_ = manager_
               ->Submit(
                   "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: two}\nspec:\n"
                   "  model: {arch: resnet20}\n  data: {dataset: synthetic}\n"
                   "  resources: {workers: 2, device: cpu}\n",
                   "")
               ->id;
    runner_->Schedule();
  }

  RankReport Report(int rank, int epoch, uint32_t digest = 7) {
    RankReport report;
    report.job_id = job_;
    report.rank = rank;
    report.epoch = epoch;
    report.weights_digest = digest;
    report.test_accuracy = rank == 0 ? 0.25 : 0.75;  // the store keeps rank 0's
    return report;
  }
  // The worker that runs `rank`.
  const std::string& WorkerOf(int rank) {
    for (int i = 0; i < 2; ++i) {
      if (!links_[i].assignments.empty() && links_[i].assignments[0].rank == rank) {
        return workers_[i];
      }
    }
    return workers_[0];
  }
  JobState State() { return store_->Get(job_)->state; }

  int64_t now_ms_ = 1000;
  Clock clock_ = [this] { return now_ms_; };
  WorkerRegistry registry_{clock_, 30, "0.1.0"};
  ProgressBoard progress_;
  std::unique_ptr<SqliteJobStore> store_;
  std::unique_ptr<FlakyStore> flaky_;  // what the runner writes through
  std::unique_ptr<JobManager> manager_;
  std::unique_ptr<JobRunner> runner_;
  FakeLink links_[2];
  std::vector<std::string> workers_;
  std::string job_;
};

TEST_F(JobRunnerTest, EveryRankGetsTheSameVerdictOnceAllHaveReported) {
  ASSERT_EQ(links_[0].assignments.size(), 1u);
  ASSERT_EQ(links_[1].assignments.size(), 1u);
  EXPECT_EQ(State(), JobState::kScheduled);
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  EXPECT_TRUE(links_[0].verdicts.empty() && links_[1].verdicts.empty());  // no rank runs ahead
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  ASSERT_EQ(links_[0].verdicts.size(), 1u);
  ASSERT_EQ(links_[1].verdicts.size(), 1u);
  EXPECT_EQ(links_[0].verdicts[0].epoch, 0);
  EXPECT_EQ(links_[0].verdicts[0].kind, links_[1].verdicts[0].kind);
  // The job's state follows the phase the verdict starts, with the epoch as the reason.
  EXPECT_EQ(State(), JobState::kDense);
  EXPECT_EQ(store_->History(job_)->back().reason, "at the boundary before epoch 0");
  // Stored before it was sent, with rank 0's metrics.
  auto stored = store_->Boundaries(job_);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].epoch, 0);
  EXPECT_DOUBLE_EQ((*stored)[0].test_accuracy, 0.25);
}

TEST_F(JobRunnerTest, DivergedRanksFailTheJobNamingTheEpochAndTheRanks) {
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0, 0xabc)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0, 0xabc)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 1, 0x1234)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 1, 0x5678)).ok());
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_THAT(job.message, HasSubstr("ranks diverged at the boundary before epoch 1"));
  EXPECT_THAT(job.message, HasSubstr("rank 0's weights digest is 00001234"));
  EXPECT_THAT(job.message, HasSubstr("rank 1 has 00005678"));
  EXPECT_EQ(links_[0].verdicts.size(), 1u);         // no verdict for the diverged boundary
  EXPECT_EQ(store_->Boundaries(job_)->size(), 1u);  // and no stored decision
  EXPECT_EQ(links_[0].cancels.size(), 1u);          // every rank is stopped
  EXPECT_EQ(links_[1].cancels.size(), 1u);
}

TEST_F(JobRunnerTest, ReportsThatDoNotBelongAreRejectedAndChangeNothing) {
  RankReport unknown = Report(0, 0);
  unknown.job_id = "nope-12345";
  EXPECT_EQ(runner_->Report(WorkerOf(0), unknown).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(runner_->Report(WorkerOf(1), Report(0, 0)).code(),
            absl::StatusCode::kPermissionDenied);  // rank 0 does not run there
  EXPECT_EQ(runner_->Report(WorkerOf(0), Report(5, 0)).code(),
            absl::StatusCode::kPermissionDenied);  // no such rank
  EXPECT_EQ(runner_->Report(WorkerOf(0), Report(0, 3)).code(),
            absl::StatusCode::kFailedPrecondition);  // not the next boundary
  RankReport nan = Report(0, 0);
  nan.train_loss = std::nan("");
  EXPECT_THAT(runner_->Report(WorkerOf(0), nan).message(), HasSubstr("trainLoss is nan"));
  RankReport misfit = Report(0, 0);
  misfit.mask = common::DenseMask({16, 32});  // ResNet-20 has more channel groups than that
  EXPECT_EQ(runner_->Report(WorkerOf(0), misfit).code(), absl::StatusCode::kInvalidArgument);
  RankReport stale = Report(0, 0);
  stale.attempt = 1;  // no restart happened
  EXPECT_EQ(runner_->Report(WorkerOf(0), stale).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  EXPECT_EQ(runner_->Report(WorkerOf(0), Report(0, 0)).code(), absl::StatusCode::kAlreadyExists);
  // The job goes on as if none of that had been sent.
  EXPECT_EQ(State(), JobState::kScheduled);
  EXPECT_TRUE(store_->Boundaries(job_)->empty());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  EXPECT_EQ(links_[0].verdicts.size(), 1u);
  EXPECT_EQ(links_[1].verdicts.size(), 1u);
}

// SQLite keeps a NaN as NULL, which the boundary's NOT NULL column refuses: the report is refused
// naming the field, instead of the job failing on a store error at the boundary.
TEST_F(JobRunnerTest, ANanLearningRateIsRefusedNamingItAndTheJobGoesOn) {
  RankReport nan = Report(0, 0);
  nan.learning_rate = std::nan("");
  const absl::Status refused = runner_->Report(WorkerOf(0), nan);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("epoch 0: learningRate is nan"));
  RankReport infinite = Report(1, 0);
  infinite.learning_rate = INFINITY;
  EXPECT_THAT(runner_->Report(WorkerOf(1), infinite).message(), HasSubstr("learningRate is inf"));
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  EXPECT_EQ(State(), JobState::kScheduled);  // not failed
  RankReport fine = Report(0, 0);
  fine.learning_rate = 0.1;
  ASSERT_TRUE(runner_->Report(WorkerOf(0), fine).ok());
  ASSERT_EQ(links_[0].verdicts.size(), 1u);
  EXPECT_EQ(State(), JobState::kDense);
  EXPECT_DOUBLE_EQ(store_->Boundaries(job_)->at(0).learning_rate, 0.1);
}

// Workers register afresh for every session: a second session under a live one's id is a copy.
// It is refused, and the live session keeps its ranks, its verdicts and its place in the schedule.
TEST_F(JobRunnerTest, ASecondSessionOfAConnectedWorkerIsRefusedAndTheFirstKeepsItsRanks) {
  const std::string holder = WorkerOf(0);
  FakeLink copy;
  const absl::Status refused = runner_->Connect(holder, &copy);
  EXPECT_EQ(refused.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.message(), HasSubstr(holder));
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  EXPECT_EQ(links_[0].verdicts.size(), 1u);
  EXPECT_EQ(links_[1].verdicts.size(), 1u);
  EXPECT_TRUE(copy.verdicts.empty() && copy.assignments.empty() && copy.cancels.empty());
  EXPECT_TRUE(runner_->ExpireReattachments().empty());
  // Once the live session closed, the worker may open one again.
  runner_->Detach(holder);
  EXPECT_TRUE(runner_->Connect(holder, &copy).ok());
}

// A store that refuses the job's end (a full disk) must not leave it running there with nothing
// running it: the end is retried until the store takes it.
TEST_F(JobRunnerTest, AnEndTheStoreRefusedIsStoredWhenTheStoreRecovers) {
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  flaky_->refuse_transitions = true;
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(runner_->Finished(WorkerOf(rank), job_, 0, rank, {true, false, ""}).ok());
  }
  EXPECT_EQ(State(), JobState::kDense);  // the store still says running
  EXPECT_TRUE(runner_->SettleEnds().empty());
  EXPECT_EQ(registry_.List()[0].free_slots, 1);  // nothing runs it: its slots are free
  flaky_->refuse_transitions = false;
  EXPECT_EQ(runner_->SettleEnds(), std::vector<std::string>{job_});
  EXPECT_EQ(State(), JobState::kSucceeded);
  EXPECT_TRUE(runner_->SettleEnds().empty());  // once
}

TEST_F(JobRunnerTest, ARequeueTheStoreRefusedStartsTheJobOnceTheStoreRecovers) {
  flaky_->refuse_transitions = true;
  runner_->Disconnect(WorkerOf(1), "was lost");  // lost: the job goes back to the queue
  EXPECT_EQ(State(), JobState::kScheduled);
  flaky_->refuse_transitions = false;
  const std::string fresh = registry_.Register("127.0.0.1", common::Device::kCpu, 1, "0.1.0")->id;
  FakeLink link;
  ASSERT_TRUE(runner_->Connect(fresh, &link).ok());
  EXPECT_TRUE(link.assignments.empty());  // not pending in the store yet
  EXPECT_EQ(runner_->SettleEnds(), std::vector<std::string>{job_});
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.restarts, 1);
  EXPECT_EQ(job.state, JobState::kScheduled);  // requeued and started again at once
  ASSERT_EQ(link.assignments.size(), 1u);
  EXPECT_TRUE(link.assignments[0].resume);
}

TEST_F(JobRunnerTest, AnEndThatNoLongerAppliesIsLetGo) {
  flaky_->refuse_transitions = true;
  RankReport a = Report(0, 0), b = Report(1, 0, 8);  // diverged: the job fails
  ASSERT_TRUE(runner_->Report(WorkerOf(0), a).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), b).ok());
  ASSERT_TRUE(manager_->Cancel(job_, "by hand").ok());  // the user cancels it meanwhile
  flaky_->refuse_transitions = false;
  EXPECT_TRUE(runner_->SettleEnds().empty());
  EXPECT_EQ(State(), JobState::kCancelled);
}

// A worker whose rank already finished goes (it left, or its lease ran out) while rank 0 still
// uploads: the job carries on to its end instead of restarting.
TEST_F(JobRunnerTest, AWorkerWhoseRankFinishedGoesWithoutRestartingTheJob) {
  ASSERT_TRUE(runner_->Finished(WorkerOf(1), job_, 0, 1, {true, false, ""}).ok());
  runner_->Disconnect(WorkerOf(1), "left (stopped by SIGTERM)");
  EXPECT_EQ(State(), JobState::kScheduled);
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, {true, false, ""}).ok());
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(job.restarts, 0);
}

// A rank cut off from its peers is often heard a moment before the dead peer's session closes:
// the restart waits for the fleet to settle instead of going to the worker about to be found gone
// (and waiting out its lease there, a second restart).
TEST_F(JobRunnerTest, ARestartAfterAPeersFailureWaitsForTheFleetToSettle) {
  const std::string dead = WorkerOf(1);
  FakeLink& dead_link = links_[dead == workers_[0] ? 0 : 1];
  ASSERT_TRUE(runner_
                  ->Finished(WorkerOf(0), job_, 0, 0,
                             {false, true, "training stopped: Connection reset by peer"})
                  .ok());
  EXPECT_EQ(State(), JobState::kPending);
  const std::string fresh = registry_.Register("127.0.0.1", common::Device::kCpu, 1, "0.1.0")->id;
  FakeLink fresh_link;
  ASSERT_TRUE(runner_->Connect(fresh, &fresh_link).ok());  // schedules: too early
  EXPECT_EQ(State(), JobState::kPending);
  runner_->Detach(dead);  // its session closes a moment after the report
  now_ms_ += 1999;
  runner_->StartSettledRestarts();
  EXPECT_EQ(State(), JobState::kPending);
  now_ms_ += 1;
  runner_->StartSettledRestarts();
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.state, JobState::kScheduled);
  EXPECT_EQ(job.restarts, 1);
  EXPECT_EQ(dead_link.assignments.size(), 1u);  // only attempt 0's
  ASSERT_EQ(fresh_link.assignments.size(), 1u);
  EXPECT_EQ(fresh_link.assignments[0].attempt, 1);
}

// A wall clock stepped back while a restart waits does not hold the queue for the size of the step.
TEST_F(JobRunnerTest, AClockSteppedBackDoesNotProlongTheWait) {
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, {false, true, "peer gone"}).ok());
  now_ms_ -= 3600 * 1000;
  runner_->StartSettledRestarts();
  EXPECT_EQ(State(), JobState::kScheduled);
}

// What ranks of a two-rank job report when rank 1 runs out of memory and rank 0, cut off from it,
// is heard first: the restart rank 0's report queued must not go ahead.
const RankOutcome kCutOff{false, true, "training stopped: Connection closed by peer"};
const RankOutcome kOutOfMemory{false, false,
                               "training stopped: out of memory on device cpu at "
                               "spec.training.batchSize 4096 (a smaller batch needs less)",
                               true};

TEST_F(JobRunnerTest, ARankOutOfMemoryHeardAfterItsPeerCallsOffTheRestart) {
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, kCutOff).ok());
  EXPECT_EQ(State(), JobState::kPending);
  now_ms_ += 2500;  // past the 2 s, before the once-a-second pass starts the restart
  ASSERT_TRUE(runner_->Finished(WorkerOf(1), job_, 0, 1, kOutOfMemory).ok());
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_THAT(job.message, HasSubstr("rank 1: training stopped: out of memory on device cpu at "
                                     "spec.training.batchSize 4096"));
  EXPECT_THAT(job.message, HasSubstr("the restart that a peer's failure queued is called off"));
  now_ms_ += 2000;
  runner_->StartSettledRestarts();
  for (const FakeLink& link : links_) EXPECT_EQ(link.assignments.size(), 1u);  // attempt 0's only
  EXPECT_EQ(State(), JobState::kFailed);
}

// The other ranks' stop after the coordinator cancelled them is no reason to fail the job, nor is
// a rank's report that comes after the restart started, or from a worker that did not run it.
TEST_F(JobRunnerTest, OnlyAnOutOfMemoryReportOfTheLostAttemptWhileItSettlesCallsOffTheRestart) {
  const std::string rank1 = WorkerOf(1);
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, kCutOff).ok());
  EXPECT_TRUE(absl::IsNotFound(runner_->Finished(rank1, job_, 0, 1, {false, false, "cancelled"})));
  EXPECT_TRUE(absl::IsNotFound(runner_->Finished(WorkerOf(0), job_, 0, 1, kOutOfMemory)));
  EXPECT_TRUE(absl::IsNotFound(runner_->Finished(rank1, job_, 1, 1, kOutOfMemory)));
  EXPECT_EQ(State(), JobState::kPending);
  now_ms_ += 2000;
  runner_->StartSettledRestarts();
  EXPECT_EQ(State(), JobState::kScheduled);
  EXPECT_FALSE(runner_->Finished(rank1, job_, 0, 1, kOutOfMemory).ok());  // attempt 1 runs now
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.state, JobState::kScheduled);
  EXPECT_EQ(job.restarts, 1);
}

// A failure the store refused (a full disk) keeps the job from starting while it is retried.
TEST_F(JobRunnerTest, ACalledOffRestartTheStoreRefusedDoesNotStart) {
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, kCutOff).ok());
  flaky_->refuse_transitions = true;
  ASSERT_TRUE(runner_->Finished(WorkerOf(1), job_, 0, 1, kOutOfMemory).ok());
  flaky_->refuse_transitions = false;
  now_ms_ += 2000;
  runner_->Schedule();  // as any other job's end or a worker's arrival does
  EXPECT_EQ(State(), JobState::kPending);
  for (const FakeLink& link : links_) EXPECT_EQ(link.assignments.size(), 1u);
  EXPECT_EQ(runner_->SettleEnds(), std::vector<std::string>{job_});
  EXPECT_EQ(State(), JobState::kFailed);
}

// The restart's requeue and then the failure are refused (a full disk): the failure is the end the
// store takes when it recovers.
TEST_F(JobRunnerTest, AFailureTheStoreRefusedReplacesTheRequeueItRefusedBefore) {
  flaky_->refuse_transitions = true;
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, kCutOff).ok());
  ASSERT_TRUE(runner_->Finished(WorkerOf(1), job_, 0, 1, kOutOfMemory).ok());
  flaky_->refuse_transitions = false;
  EXPECT_EQ(runner_->SettleEnds(), std::vector<std::string>{job_});
  EXPECT_EQ(State(), JobState::kFailed);
  now_ms_ += 2000;
  runner_->StartSettledRestarts();
  EXPECT_EQ(State(), JobState::kFailed);
}

// A job cancelled while its restart waits stays cancelled: the out-of-memory report is refused.
TEST_F(JobRunnerTest, AnOutOfMemoryReportAfterTheQueuedRestartWasCancelledChangesNothing) {
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, kCutOff).ok());
  ASSERT_TRUE(manager_->Cancel(job_, "by hand").ok());
  runner_->Cancelled(job_, "by hand");  // as the coordinator's cancel hook does
  EXPECT_TRUE(absl::IsNotFound(runner_->Finished(WorkerOf(1), job_, 0, 1, kOutOfMemory)));
  EXPECT_EQ(State(), JobState::kCancelled);
}

// Step progress lives only while a job runs: a coordinator running many jobs keeps none of it.
TEST_F(JobRunnerTest, AJobThatStopsRunningLeavesNoProgressBehind) {
  progress_.Set(job_, {0, 5, 10});
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(runner_->Finished(WorkerOf(rank), job_, 0, rank, {true, false, ""}).ok());
  }
  EXPECT_EQ(State(), JobState::kSucceeded);
  EXPECT_FALSE(progress_.Get(job_).has_value());
}

TEST_F(JobRunnerTest, WaitingJobsStartByPriorityThenAge) {
  auto submit = [&](const std::string& name, int priority) {
    return manager_
        ->Submit(absl::StrCat("apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: ", name,
                              "}\nspec:\n  model: {arch: resnet20}\n  data: {dataset: synthetic}\n"
                              "  resources: {workers: 2, device: cpu}\n  priority: ",
                              priority, "\n"),
                 "")
        ->id;
  };
  const std::string early_low = submit("early-low", 0);
  const std::string high = submit("high", 5);
  const std::string late_low = submit("late-low", 0);
  runner_->Schedule();  // the fleet is busy with the first job: everyone waits
  EXPECT_EQ(store_->Get(high)->state, JobState::kPending);
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(runner_->Finished(WorkerOf(rank), job_, 0, rank, {true, false, ""}).ok());
  }
  EXPECT_EQ(State(), JobState::kSucceeded);
  EXPECT_EQ(store_->Get(high)->state, JobState::kScheduled);  // overtook the older low ones
  EXPECT_EQ(store_->Get(early_low)->state, JobState::kPending);
  EXPECT_EQ(links_[0].assignments.back().job_id, high);
  for (int i = 0; i < 2; ++i) {
    const RankAssignment& a = links_[i].assignments.back();
    ASSERT_TRUE(runner_->Finished(workers_[i], high, 0, a.rank, {true, false, ""}).ok());
  }
  EXPECT_EQ(store_->Get(early_low)->state, JobState::kScheduled);  // then first come, first served
  EXPECT_EQ(store_->Get(late_low)->state, JobState::kPending);
}

// A coordinator restarted over the same store: its runner waits for the ranks to come back.
class ReattachTest : public JobRunnerTest {
 protected:
  void Restart() {
    runner_ = std::make_unique<JobRunner>(*store_, registry_, clock_, 29000, 100);
    EXPECT_EQ(runner_->AwaitReattachment(5000), std::vector<std::string>{job_});
    for (int i = 0; i < 2; ++i) {
      rejoined_.push_back(registry_.Register("127.0.0.1", common::Device::kCpu, 1, "0.1.0")->id);
    }
  }
  RankClaim Claim(int rank, std::optional<RankReport> pending = std::nullopt) {
    return {job_, 0, rank, 2, "127.0.0.1:29000", std::move(pending), std::nullopt};
  }

  FakeLink new_links_[2];
  std::vector<std::string> rejoined_;
};

TEST_F(ReattachTest, ClaimedRanksCarryOnWithTheirPendingReportsAndNoRestart) {
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 1)).ok());  // lost with the coordinator
  Restart();
  ASSERT_TRUE(runner_->Connect(rejoined_[0], &new_links_[0], {Claim(0, Report(0, 1))}).ok());
  EXPECT_TRUE(new_links_[0].verdicts.empty());  // rank 1 has not reported epoch 1 yet
  ASSERT_TRUE(runner_->Connect(rejoined_[1], &new_links_[1], {Claim(1)}).ok());
  ASSERT_TRUE(runner_->Report(rejoined_[1], Report(1, 1)).ok());
  for (const FakeLink& link : new_links_) {
    ASSERT_EQ(link.verdicts.size(), 1u);
    EXPECT_EQ(link.verdicts[0].epoch, 1);
    EXPECT_TRUE(link.assignments.empty() && link.cancels.empty());
  }
  EXPECT_EQ(store_->Get(job_)->restarts, 0);
  EXPECT_EQ(store_->Boundaries(job_)->size(), 2u);
  EXPECT_EQ(store_->Boundaries(job_)->back().attempt, 0);
  EXPECT_TRUE(runner_->ExpireReattachments().empty());
}

TEST_F(ReattachTest, ARankWaitingForAVerdictGivenBeforeTheRestartHearsTheSameOneAgain) {
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  const common::Verdict given = links_[0].verdicts.at(0);
  Restart();  // say rank 1 heard it and rank 0 did not
  ASSERT_TRUE(runner_->Connect(rejoined_[0], &new_links_[0], {Claim(0, Report(0, 0))}).ok());
  ASSERT_TRUE(runner_->Connect(rejoined_[1], &new_links_[1], {Claim(1)}).ok());
  ASSERT_EQ(new_links_[0].verdicts.size(), 1u);
  EXPECT_EQ(new_links_[0].verdicts[0].epoch, given.epoch);
  EXPECT_EQ(new_links_[0].verdicts[0].kind, given.kind);
  EXPECT_EQ(new_links_[0].verdicts[0].phase, given.phase);
  EXPECT_TRUE(new_links_[1].verdicts.empty());
  EXPECT_EQ(store_->Boundaries(job_)->size(), 1u);  // not decided twice
  // And the job goes on from there.
  ASSERT_TRUE(runner_->Report(rejoined_[0], Report(0, 1)).ok());
  ASSERT_TRUE(runner_->Report(rejoined_[1], Report(1, 1)).ok());
  EXPECT_EQ(new_links_[1].verdicts.at(0).epoch, 1);
}

TEST_F(ReattachTest, ClaimsThatDoNotBelongAreCancelledNamingWhy) {
  Restart();
  RankClaim stale = Claim(0);
  stale.attempt = 1;
  RankClaim unknown = Claim(0);
  unknown.job_id = "gone-12345";
  RankClaim misfit = Claim(0);
  misfit.world_size = 4;
  ASSERT_TRUE(
      runner_->Connect(rejoined_[0], &new_links_[0], {stale, unknown, misfit, Claim(1)}).ok());
  ASSERT_TRUE(
      runner_->Connect(rejoined_[1], &new_links_[1], {Claim(1)}).ok());  // rank 1 is held already
  ASSERT_EQ(new_links_[0].cancels.size(), 3u);
  EXPECT_THAT(new_links_[0].cancels[0], HasSubstr("attempt 1 was stopped"));
  EXPECT_THAT(new_links_[0].cancels[1], HasSubstr("does not run any more"));
  EXPECT_THAT(new_links_[0].cancels[2], HasSubstr("rank 0 of 4 does not fit its 2 ranks"));
  ASSERT_EQ(new_links_[1].cancels.size(), 1u);
  EXPECT_THAT(new_links_[1].cancels[0], HasSubstr("rank 1 is held by " + rejoined_[0]));
}

TEST_F(ReattachTest, RanksThatDoNotComeBackInTimeRestartTheJobFromItsCheckpoint) {
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  ASSERT_TRUE(runner_->Report(WorkerOf(1), Report(1, 0)).ok());
  Restart();
  ASSERT_TRUE(runner_->Connect(rejoined_[0], &new_links_[0], {Claim(0)}).ok());
  EXPECT_TRUE(runner_->ExpireReattachments().empty());  // the grace has not passed
  now_ms_ += 5000;
  EXPECT_EQ(runner_->ExpireReattachments(), std::vector<std::string>{job_});
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.restarts, 1);
  EXPECT_THAT(job.message, HasSubstr("rank(s) 1 did not re-attach in time; restart 1 of 3"));
  ASSERT_EQ(new_links_[0].cancels.size(), 1u);  // the rank that came back stops
  // Both rejoined workers are free again: the job starts anew there, resuming.
  ASSERT_TRUE(runner_->Connect(rejoined_[1], &new_links_[1]).ok());
  EXPECT_EQ(State(), JobState::kScheduled);
  ASSERT_EQ(new_links_[1].assignments.size(), 1u);
  EXPECT_TRUE(new_links_[1].assignments[0].resume);
  EXPECT_EQ(new_links_[1].assignments[0].attempt, 1);
}

// A cut connection closes one worker's session while the coordinator runs on: its ranks keep
// their places for the worker lease (30 s here) and come back with a new registration.
TEST_F(ReattachTest, AWorkerWhoseSessionClosedReclaimsItsRankWithoutARestart) {
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  const std::string cut = WorkerOf(1);
  ASSERT_TRUE(runner_->Report(cut, Report(1, 0)).ok());
  ASSERT_TRUE(runner_->Report(cut, Report(1, 1)).ok());  // arrived before the cut
  runner_->Detach(cut);
  // Rank 0 reports meanwhile: the boundary completes, the verdict cannot reach rank 1.
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 1)).ok());
  now_ms_ += 10000;
  EXPECT_TRUE(runner_->ExpireReattachments().empty());
  rejoined_.push_back(registry_.Register("127.0.0.1", common::Device::kCpu, 1, "0.1.0")->id);
  ASSERT_TRUE(runner_->Connect(rejoined_[0], &new_links_[0], {Claim(1, Report(1, 1))}).ok());
  ASSERT_EQ(new_links_[0].verdicts.size(), 1u);  // heard now, decided once
  EXPECT_EQ(new_links_[0].verdicts[0].epoch, 1);
  EXPECT_TRUE(new_links_[0].cancels.empty());
  EXPECT_EQ(store_->Boundaries(job_)->size(), 2u);
  EXPECT_EQ(store_->Get(job_)->restarts, 0);
  // A report the coordinator already counted, repeated by the claim, is not counted twice.
  ASSERT_TRUE(runner_->Report(rejoined_[0], Report(1, 2)).ok());
  runner_->Detach(rejoined_[0]);
  rejoined_.push_back(registry_.Register("127.0.0.1", common::Device::kCpu, 1, "0.1.0")->id);
  ASSERT_TRUE(runner_->Connect(rejoined_[1], &new_links_[1], {Claim(1, Report(1, 2))}).ok());
  EXPECT_TRUE(new_links_[1].cancels.empty());
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 2)).ok());
  EXPECT_EQ(new_links_[1].verdicts.at(0).epoch, 2);
  EXPECT_EQ(store_->Boundaries(job_)->size(), 3u);
}

TEST_F(ReattachTest, AWorkerWhoseRanksFinishedIsNotWaitedFor) {
  const std::string done = WorkerOf(1);
  ASSERT_TRUE(runner_->Finished(done, job_, 0, 1, {true, false, ""}).ok());
  runner_->Detach(done);  // say it shut down after its rank finished
  now_ms_ += 60000;
  EXPECT_TRUE(runner_->ExpireReattachments().empty());
  ASSERT_TRUE(runner_->Finished(WorkerOf(0), job_, 0, 0, {true, false, ""}).ok());
  EXPECT_EQ(State(), JobState::kSucceeded);
  EXPECT_EQ(store_->Get(job_)->restarts, 0);
}

TEST_F(ReattachTest, AWorkerThatDoesNotComeBackWithinTheLeaseRestartsTheJob) {
  ASSERT_TRUE(runner_->Report(WorkerOf(0), Report(0, 0)).ok());
  const std::string gone = WorkerOf(1);
  runner_->Detach(gone);
  now_ms_ += 30000;
  EXPECT_EQ(runner_->ExpireReattachments(), std::vector<std::string>{job_});
  const JobRecord job = *store_->Get(job_);
  EXPECT_EQ(job.restarts, 1);
  EXPECT_THAT(job.message, HasSubstr("worker " + gone +
                                     "'s session closed and rank(s) 1 did not re-attach in time; "
                                     "restart 1 of 3"));
}

}  // namespace
}  // namespace ocs::server
