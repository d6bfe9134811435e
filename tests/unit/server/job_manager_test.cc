// The job API core over a real SQLite file.
#include "server/job_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "server/sqlite_job_store.h"

namespace ocs::server {
namespace {

using ::testing::HasSubstr;

std::string Spec(const std::string& name, const std::string& labels = "{}") {
  return absl::StrCat("apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: ", name,
                      ", labels: ", labels,
                      "}\nspec:\n  model: {arch: resnet20}\n  data: {dataset: synthetic}\n");
}

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(::testing::TempDir(), "/jobs-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    std::filesystem::remove(path_);
    Reopen();
  }
  void Reopen() {
    manager_.reset();
    store_ = *SqliteJobStore::Open(path_);
    manager_ = std::make_unique<JobManager>(*store_, [this] { return now_ms_; });
  }

  std::string path_;
  int64_t now_ms_ = 1000;
  std::unique_ptr<SqliteJobStore> store_;
  std::unique_ptr<JobManager> manager_;
};

TEST_F(JobManagerTest, SubmitStoresACanonicalPendingJob) {
  auto job = manager_->Submit(Spec("alpha", "{team: vision}"), "alpha.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_THAT(job->id, ::testing::MatchesRegex("alpha-[a-z0-9]{5}"));
  EXPECT_EQ(job->state, JobState::kPending);
  EXPECT_EQ(job->labels.at("team"), "vision");
  EXPECT_THAT(job->spec_yaml, HasSubstr("targetFlopsReduction: 0.5"));  // defaults written out
  EXPECT_EQ(job->create_time_ms, 1000);
  auto fetched = manager_->Get(job->id);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->spec_yaml, job->spec_yaml);
  EXPECT_NE(manager_->Submit(Spec("alpha"), "")->id, job->id);  // same name, new id
}

TEST_F(JobManagerTest, SubmitRejectsAnInvalidSpecWithEveryProblemAndStoresNothing) {
  auto job = manager_->Submit(
      "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: Bad}\n"
      "spec: {model: {arch: resnet-56}, data: {dataset: synthetic}}\n",
      "bad.yaml");
  ASSERT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("2 problems"));
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("(bad.yaml:3:"));
  EXPECT_TRUE(manager_->List({}, 0, "")->jobs.empty());
}

TEST_F(JobManagerTest, JobsSurviveARestart) {
  const std::string id = manager_->Submit(Spec("durable"), "")->id;
  Reopen();
  auto job = manager_->Get(id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name, "durable");
}

TEST_F(JobManagerTest, ListFiltersByStateAndLabelsAndPaginatesNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ++now_ms_;
    ids.push_back(
        manager_->Submit(Spec(absl::StrCat("job", i), i % 2 ? "{team: a}" : "{team: b}"), "")->id);
  }
  ASSERT_TRUE(manager_->Cancel(ids[3], "").ok());
  auto page = manager_->List({}, 3, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 3u);
  EXPECT_EQ(page->jobs[0].id, ids[6]);
  std::vector<std::string> all;
  std::string token;
  do {
    auto next = manager_->List({}, 3, token);
    ASSERT_TRUE(next.ok()) << next.status();
    for (const auto& job : next->jobs) all.push_back(job.id);
    token = next->next_page_token;
  } while (!token.empty());
  EXPECT_EQ(all, std::vector<std::string>(ids.rbegin(), ids.rend()));

  EXPECT_EQ(manager_->List({{JobState::kCancelled}, {}}, 0, "")->jobs.size(), 1u);
  EXPECT_EQ(manager_->List({{}, {{"team", "a"}}}, 0, "")->jobs.size(), 3u);
  EXPECT_EQ(manager_->List({{JobState::kPending}, {{"team", "a"}}}, 0, "")->jobs.size(), 2u);
  EXPECT_EQ(manager_->List({}, 501, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->List({}, 0, "garbage").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(JobManagerTest, CancelFollowsTheStateMachine) {
  const std::string id = manager_->Submit(Spec("c"), "")->id;
  now_ms_ = 5000;
  auto cancelled = manager_->Cancel(id, "no longer needed");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  EXPECT_EQ(cancelled->message, "no longer needed");
  EXPECT_EQ(cancelled->update_time_ms, 5000);
  auto again = manager_->Cancel(id, "");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("a cancelled job cannot become cancelled"));
  EXPECT_EQ(manager_->Cancel("nope-12345", "").status().code(), absl::StatusCode::kNotFound);
}

TEST(JobStateTest, Transitions) {
  EXPECT_TRUE(CheckTransition(JobState::kPending, JobState::kScheduled).ok());
  EXPECT_TRUE(CheckTransition(JobState::kScheduled, JobState::kDense).ok());
  EXPECT_TRUE(CheckTransition(JobState::kDense, JobState::kSparsityLearning).ok());
  EXPECT_TRUE(CheckTransition(JobState::kSparsityLearning, JobState::kPruned).ok());
  EXPECT_TRUE(CheckTransition(JobState::kScheduled, JobState::kPruned).ok());  // resumed late
  EXPECT_TRUE(CheckTransition(JobState::kPruned, JobState::kPending).ok());    // requeued
  EXPECT_TRUE(CheckTransition(JobState::kPruned, JobState::kSucceeded).ok());
  EXPECT_TRUE(CheckTransition(JobState::kPending, JobState::kFailed).ok());  // restart called off
  EXPECT_FALSE(CheckTransition(JobState::kPending, JobState::kDense).ok());
  EXPECT_FALSE(CheckTransition(JobState::kDense, JobState::kScheduled).ok());
  EXPECT_FALSE(CheckTransition(JobState::kPending, JobState::kSucceeded).ok());
  EXPECT_FALSE(CheckTransition(JobState::kSucceeded, JobState::kScheduled).ok());
  EXPECT_FALSE(CheckTransition(JobState::kFailed, JobState::kCancelled).ok());
  EXPECT_EQ(JobStateFromString("sparsity-learning"), JobState::kSparsityLearning);
  EXPECT_EQ(JobStateFromString("running"), JobState::kScheduled);  // older stores
}

TEST(SqliteJobStoreTest, ReportsAnUnopenableFile) {
  auto store = SqliteJobStore::Open("/nonexistent-dir/ocs.db");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("/nonexistent-dir/ocs.db"));
}

}  // namespace
}  // namespace ocs::server
