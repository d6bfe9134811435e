// The SQLite store's history and boundary tables, over a real file, across reopening.
#include "server/sqlite_job_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace ocs::server {
namespace {

class SqliteStoreTablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(::testing::TempDir(), "/store-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    std::filesystem::remove(path_);
    store_ = *SqliteJobStore::Open(path_);
    JobRecord job;
    job.id = "alpha-abcde";
    job.name = "alpha";
    job.spec_yaml = "spec";
    job.create_time_ms = job.update_time_ms = 100;
    ASSERT_TRUE(store_->Create(job).ok());
  }

  static BoundaryRecord Boundary(int epoch) {
    BoundaryRecord b;
    b.epoch = epoch;
    b.phase = "sparsity";
    b.lambda = 0.02;
    b.test_accuracy = 0.5 + epoch / 100.0;
    b.flops = 1000 - epoch;
    b.time_ms = 200 + epoch;
    b.attempt = epoch + 2;
    b.params = 500 - epoch;
    b.learning_rate = 0.1 / (epoch + 1);
    return b;
  }

  std::string path_;
  std::unique_ptr<SqliteJobStore> store_;
};

TEST_F(SqliteStoreTablesTest, HistoryRecordsEveryTransitionWithTimeAndReason) {
  ASSERT_TRUE(store_->Transition("alpha-abcde", JobState::kScheduled, "", 150).ok());
  ASSERT_TRUE(store_->Transition("alpha-abcde", JobState::kFailed, "worker w1 was lost", 170).ok());
  EXPECT_FALSE(store_->Transition("alpha-abcde", JobState::kDense, "", 180).ok());  // refused
  auto history = store_->History("alpha-abcde");
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 3u);  // the refused transition left no trace
  EXPECT_FALSE((*history)[0].from.has_value());
  EXPECT_EQ((*history)[0].to, JobState::kPending);
  EXPECT_EQ((*history)[0].reason, "submitted");
  EXPECT_EQ((*history)[1].from, JobState::kPending);
  EXPECT_EQ((*history)[1].time_ms, 150);
  EXPECT_EQ((*history)[2].to, JobState::kFailed);
  EXPECT_EQ((*history)[2].reason, "worker w1 was lost");
  EXPECT_EQ(store_->History("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTablesTest, RecentlyEndedListsTheLastToEndFirstWithinTheLimit) {
  // Created beta, gamma, delta in that order; they end in the order delta, beta, gamma.
  for (const char* name : {"beta", "gamma", "delta"}) {
    JobRecord job;
    job.id = absl::StrCat(name, "-abcde");
    job.name = name;
    job.spec_yaml = "spec";
    job.create_time_ms = job.update_time_ms = 100;
    ASSERT_TRUE(store_->Create(job).ok());
  }
  ASSERT_TRUE(store_->Transition("delta-abcde", JobState::kCancelled, "", 300).ok());
  ASSERT_TRUE(store_->Transition("beta-abcde", JobState::kCancelled, "", 400).ok());
  ASSERT_TRUE(store_->Transition("gamma-abcde", JobState::kScheduled, "", 450).ok());
  ASSERT_TRUE(store_->Transition("gamma-abcde", JobState::kFailed, "x", 500).ok());
  ASSERT_TRUE(store_->Transition("alpha-abcde", JobState::kScheduled, "", 600).ok());  // running

  auto ids = [this](int64_t since_ms, int limit) {
    std::vector<std::string> ids;
    auto ended = store_->RecentlyEnded(since_ms, limit);
    EXPECT_TRUE(ended.ok()) << ended.status();
    for (const JobRecord& job : *ended) ids.push_back(job.id);
    return ids;
  };
  EXPECT_THAT(ids(0, 10), ::testing::ElementsAre("gamma-abcde", "beta-abcde", "delta-abcde"));
  EXPECT_THAT(ids(0, 2), ::testing::ElementsAre("gamma-abcde", "beta-abcde"));
  EXPECT_THAT(ids(400, 10), ::testing::ElementsAre("gamma-abcde", "beta-abcde"));
  EXPECT_THAT(ids(0, 0), ::testing::IsEmpty());
}

TEST_F(SqliteStoreTablesTest, BoundariesRoundTripOncePerEpochAndSurviveReopening) {
  BoundaryRecord first = Boundary(0);
  first.phase = "dense";
  BoundaryRecord second = Boundary(1);
  second.j = 0.75;
  second.j_bar = 0.5;
  second.prune = true;
  second.mask = std::string("OCSM\x01\x00\xff", 7);  // bytes, NUL included
  ASSERT_TRUE(store_->AddBoundary("alpha-abcde", first).ok());
  ASSERT_TRUE(store_->AddBoundary("alpha-abcde", second).ok());
  EXPECT_EQ(store_->AddBoundary("alpha-abcde", Boundary(1)).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->AddBoundary("nope", Boundary(0)).code(), absl::StatusCode::kNotFound);

  store_.reset();
  store_ = *SqliteJobStore::Open(path_);
  auto boundaries = store_->Boundaries("alpha-abcde");
  ASSERT_TRUE(boundaries.ok()) << boundaries.status();
  ASSERT_EQ(boundaries->size(), 2u);
  const BoundaryRecord& a = (*boundaries)[0];
  const BoundaryRecord& b = (*boundaries)[1];
  EXPECT_EQ(a.epoch, 0);
  EXPECT_EQ(a.phase, "dense");
  EXPECT_FALSE(a.j.has_value());
  EXPECT_TRUE(a.mask.empty());
  EXPECT_EQ(b.epoch, 1);
  EXPECT_TRUE(b.prune);
  EXPECT_DOUBLE_EQ(*b.j, 0.75);
  EXPECT_DOUBLE_EQ(*b.j_bar, 0.5);
  EXPECT_DOUBLE_EQ(b.lambda, 0.02);
  EXPECT_DOUBLE_EQ(b.test_accuracy, 0.51);
  EXPECT_EQ(b.flops, 999);
  EXPECT_EQ(b.mask, std::string("OCSM\x01\x00\xff", 7));
  EXPECT_EQ(b.time_ms, 201);
  EXPECT_EQ(b.attempt, 3);  // which attempt decided it: a restarted coordinator needs it
  EXPECT_EQ(b.params, 499);
  EXPECT_DOUBLE_EQ(b.learning_rate, 0.05);
}

// Only a taken key is a duplicate. Another constraint (SQLite keeps a NaN as NULL, which a
// NOT NULL column refuses) is an internal error naming it, never "stored already".
TEST_F(SqliteStoreTablesTest, OnlyATakenKeyIsReportedAsStoredAlready) {
  BoundaryRecord nan = Boundary(0);
  nan.learning_rate = std::nan("");
  const absl::Status refused = store_->AddBoundary("alpha-abcde", nan);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("boundary before epoch 0"));
  EXPECT_THAT(refused.message(),
              ::testing::HasSubstr("NOT NULL constraint failed: boundaries.learning_rate"));
  EXPECT_TRUE(store_->Boundaries("alpha-abcde")->empty());
  ASSERT_TRUE(store_->AddBoundary("alpha-abcde", Boundary(0)).ok());
  const absl::Status duplicate = store_->AddBoundary("alpha-abcde", Boundary(0));
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(duplicate.message(), ::testing::HasSubstr("before epoch 0 is stored already"));
  JobRecord again;
  again.id = "alpha-abcde";
  again.name = "alpha";
  EXPECT_EQ(store_->Create(again).code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace ocs::server
