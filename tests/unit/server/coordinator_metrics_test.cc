// The coordinator's /metrics over a real store: what it shows of running and ended jobs, and
// that ended jobs disappear after the retention period.
#include "server/coordinator_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
#include "server/job_manager.h"
#include "server/sqlite_job_store.h"
#include "tests/support/http.h"

namespace ocs::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kMinute = 60 * 1000;

class CoordinatorMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = absl::StrCat(::testing::TempDir(), "/metrics-", getpid(), ".db");
    std::filesystem::remove(path);
    store_ = *SqliteJobStore::Open(path);
    JobManager jobs(*store_, clock_);
    for (const char* name : {"running", "ended-lately", "ended-long-ago"}) {
      ids_[name] =
          jobs.Submit(absl::StrCat("apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: ", name,
                                   "}\nspec:\n  model: {arch: resnet20}\n"
                                   "  data: {dataset: synthetic}\n"),
                      "")
              ->id;
      ASSERT_TRUE(store_->Transition(ids_[name], JobState::kScheduled, "", now_ms_).ok());
    }
    BoundaryRecord b;
    b.epoch = 3;
    b.phase = "sparsity";
    b.j = 0.9;
    b.j_bar = 0.875;
    b.flops = 20'000'000;
    b.time_ms = now_ms_;
    ASSERT_TRUE(store_->AddBoundary(ids_["running"], b).ok());
    ASSERT_TRUE(store_->Transition(ids_["ended-long-ago"], JobState::kSucceeded, "", now_ms_).ok());
    now_ms_ += 20 * kMinute;  // past the retention for the first that ended
    ASSERT_TRUE(store_->Transition(ids_["ended-lately"], JobState::kFailed, "x", now_ms_).ok());
    auto metrics =
        CoordinatorMetrics::Serve({"127.0.0.1:0", 15 * kMinute}, *store_, workers_, clock_);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = *std::move(metrics);
  }

  std::string Scrape() {
    const testing::HttpResponse response = testing::HttpGet(metrics_->port(), "/metrics");
    EXPECT_EQ(response.status, 200);
    return response.body;
  }

  int64_t now_ms_ = 1'000'000;
  Clock clock_ = [this] { return now_ms_; };
  WorkerRegistry workers_{clock_, 30, "0.1.0"};
  std::unique_ptr<SqliteJobStore> store_;
  std::map<std::string, std::string> ids_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
};

TEST_F(CoordinatorMetricsTest, RunningJobsShowTheirNewestBoundary) {
  const std::string text = Scrape();
  const std::string job = absl::StrCat("job_id=\"", ids_["running"], "\",job_name=\"running\"");
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_job_stability_mean{", job, "} 0.875")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_job_epoch{", job, "} 3")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_job_state{", job, ",state=\"scheduled\"} 1")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_job_dense_flops{", job,
                                           "} 40813184")));  // ResNet-20, CIFAR shape
  EXPECT_THAT(text, Not(HasSubstr(absl::StrCat("ocs_job_prune_epoch{", job))));  // not yet
}

TEST_F(CoordinatorMetricsTest, EndedJobsStayForTheRetentionPeriodThenDisappear) {
  std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr(ids_["ended-lately"]));
  EXPECT_THAT(text, Not(HasSubstr(ids_["ended-long-ago"])));
  // Counted all the same.
  EXPECT_THAT(text, HasSubstr("ocs_jobs{state=\"succeeded\"} 1"));
  EXPECT_THAT(text, HasSubstr("ocs_jobs{state=\"failed\"} 1"));
  now_ms_ += 16 * kMinute;
  text = Scrape();
  EXPECT_THAT(text, Not(HasSubstr(ids_["ended-lately"])));
  EXPECT_THAT(text, HasSubstr(ids_["running"]));
}

TEST_F(CoordinatorMetricsTest, AtMostTheNewestEndedJobsAreShown) {
  // "ended-long-ago" was created after "ended-lately" in the list, but ended 20 minutes sooner.
  MetricsOptions options{"127.0.0.1:0", 60 * kMinute, 1};
  auto capped = CoordinatorMetrics::Serve(options, *store_, workers_, clock_);
  ASSERT_TRUE(capped.ok()) << capped.status();
  const std::string text = testing::HttpGet((*capped)->port(), "/metrics").body;
  EXPECT_THAT(text, HasSubstr(ids_["ended-lately"]));
  EXPECT_THAT(text, Not(HasSubstr(ids_["ended-long-ago"])));
  EXPECT_THAT(text, HasSubstr(ids_["running"]));  // jobs not ended are always shown
  EXPECT_THAT(text, HasSubstr("ocs_jobs{state=\"succeeded\"} 1"));  // and every job counted
}

TEST_F(CoordinatorMetricsTest, AJobIsShownAnewWhenItsStateChangesWithinTheSameMillisecond) {
  const std::string job = absl::StrCat("job_id=\"", ids_["running"], "\",job_name=\"running\"");
  EXPECT_THAT(Scrape(), HasSubstr(absl::StrCat("ocs_job_state{", job, ",state=\"scheduled\"} 1")));
  ASSERT_TRUE(store_->Transition(ids_["running"], JobState::kPending, "requeued", now_ms_).ok());
  EXPECT_THAT(Scrape(), HasSubstr(absl::StrCat("ocs_job_state{", job, ",state=\"pending\"} 1")));
  // Same update time, new state: the samples kept from the last scrape must not be reused.
  ASSERT_TRUE(store_->Transition(ids_["running"], JobState::kCancelled, "by user", now_ms_).ok());
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_job_state{", job, ",state=\"cancelled\"} 1")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_job_state{", job, ",state=\"pending\"} 0")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_job_epoch{", job, "} 3")));
}

TEST_F(CoordinatorMetricsTest, AJobRequeuedTwiceWithinTheSameMillisecondShowsItsRestarts) {
  const std::string job = absl::StrCat("job_id=\"", ids_["running"], "\",job_name=\"running\"");
  ASSERT_TRUE(store_->Transition(ids_["running"], JobState::kPending, "requeued", now_ms_).ok());
  EXPECT_THAT(Scrape(), HasSubstr(absl::StrCat("ocs_job_restarts_total{", job, "} 1")));
  // Back to pending at the same update time: only the restart count tells the two apart.
  ASSERT_TRUE(store_->Transition(ids_["running"], JobState::kScheduled, "placed", now_ms_).ok());
  ASSERT_TRUE(store_->Transition(ids_["running"], JobState::kDense, "started", now_ms_).ok());
  ASSERT_TRUE(store_->Transition(ids_["running"], JobState::kPending, "requeued", now_ms_).ok());
  EXPECT_THAT(Scrape(), HasSubstr(absl::StrCat("ocs_job_restarts_total{", job, "} 2")));
}

TEST_F(CoordinatorMetricsTest, NegativeLimitsAreAClearError) {
  MetricsOptions options{"127.0.0.1:0", 0};
  options.max_ended_jobs = -1;
  auto served = CoordinatorMetrics::Serve(options, *store_, workers_, clock_);
  ASSERT_FALSE(served.ok());
  EXPECT_THAT(served.status().message(), HasSubstr("must not be negative"));
}

TEST_F(CoordinatorMetricsTest, WorkersAreIdleBusyOrLost) {
  const std::string idle = workers_.Register("10.0.0.1", common::Device::kCpu, 2, "0.1.0")->id;
  const std::string busy = workers_.Register("10.0.0.2", common::Device::kCpu, 1, "0.1.0")->id;
  workers_.AdjustFreeSlots(busy, -1);
  now_ms_ += 10'000;
  std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("ocs_workers{state=\"idle\"} 1"));
  EXPECT_THAT(text, HasSubstr("ocs_workers{state=\"busy\"} 1"));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("ocs_worker_heartbeat_age_seconds{worker_id=\"", idle,
                                           "\",host=\"10.0.0.1\"} 10")));
  now_ms_ += 31'000;  // past the lease
  EXPECT_THAT(Scrape(), HasSubstr("ocs_workers{state=\"lost\"} 2"));
  EXPECT_THAT(Scrape(), HasSubstr("ocs_workers_lost_total 0"));
  // The coordinator drops them within a second, long before most scrapes: the counter keeps
  // that they were lost.
  EXPECT_EQ(workers_.ExpireLeases().size(), 2u);
  text = Scrape();
  EXPECT_THAT(text, HasSubstr("ocs_workers{state=\"lost\"} 0"));
  EXPECT_THAT(text, HasSubstr("ocs_workers_lost_total 2"));
}

TEST_F(CoordinatorMetricsTest, AnAddressInUseIsAClearError) {
  auto second = CoordinatorMetrics::Serve({absl::StrCat("127.0.0.1:", metrics_->port()), 0},
                                          *store_, workers_, clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("metrics: cannot listen on 127.0.0.1:"));
}

}  // namespace
}  // namespace ocs::server
