// The worker's /metrics over real HTTP: an ended rank trains no images, its series go once the
// retention has passed even on a worker that gets no new rank, and GPU memory is read at each
// scrape.
#include "worker/agent/worker_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "tests/support/http.h"

namespace ocs::worker::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const RankLabels kRank{"job-1", "demo", 0};

std::string Scrape(const WorkerMetrics& metrics) {
  const ocs::testing::HttpResponse response = ocs::testing::HttpGet(metrics.port(), "/metrics");
  EXPECT_EQ(response.status, 200);
  return response.body;
}

TEST(WorkerMetricsTest, AnEndedRankTrainsNoImagesAndItsSeriesStayForTheRetention) {
  auto metrics = WorkerMetrics::Serve("127.0.0.1:0", "cpu");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  (*metrics)->RankStarted(kRank);
  (*metrics)->Epoch(kRank, 1234.5);
  (*metrics)->StepDone(kRank, 64, 0.5, 0.25);
  (*metrics)->StepDone(kRank, 36, std::nullopt, 0.75);  // untimed: its all-reduce is not counted
  EXPECT_THAT(Scrape(**metrics), HasSubstr("ocs_worker_images_per_second{job_id=\"job-1\","
                                           "job_name=\"demo\",rank=\"0\"} 1234.5"));
  (*metrics)->RankEnded(kRank);
  const std::string ended = Scrape(**metrics);
  EXPECT_THAT(ended, HasSubstr("ocs_worker_images_per_second{job_id=\"job-1\",job_name=\"demo\","
                               "rank=\"0\"} 0\n"));
  EXPECT_THAT(ended,
              HasSubstr("ocs_worker_allreduce_seconds_total{job_id=\"job-1\",job_name=\"demo\","
                        "rank=\"0\"} 0.25\n"));
  EXPECT_THAT(ended, HasSubstr("ocs_worker_images_total{job_id=\"job-1\",job_name=\"demo\","
                               "rank=\"0\"} 100\n"));
  EXPECT_THAT(ended, HasSubstr("ocs_worker_ranks 0\n"));
}

// They used to go only when a new rank started: an idle worker kept them until it restarted.
TEST(WorkerMetricsTest, AnIdleWorkerDropsEndedRanksOnceTheRetentionHasPassed) {
  auto metrics = WorkerMetrics::Serve("127.0.0.1:0", "cpu", {}, /*retention_seconds=*/0);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  (*metrics)->RankStarted(kRank);
  (*metrics)->Epoch(kRank, 100);
  (*metrics)->RankEnded(kRank);
  const std::string idle = Scrape(**metrics);
  EXPECT_THAT(idle, Not(HasSubstr("job-1")));
  EXPECT_THAT(idle, HasSubstr("# TYPE ocs_worker_ranks gauge"));
}

// It was set at epoch ends only: stale between jobs, and 0 before a rank's first epoch.
TEST(WorkerMetricsTest, DeviceMemoryIsReadAtEachScrape) {
  std::atomic<int64_t> used{1000};
  auto metrics = WorkerMetrics::Serve("127.0.0.1:0", "cuda", [&used] {
    return std::optional<DeviceMemoryReading>(DeviceMemoryReading{used += 1000, 80000});
  });
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(Scrape(**metrics),
              HasSubstr("ocs_worker_device_memory_bytes{state=\"used\"} 2000\n"));
  const std::string second = Scrape(**metrics);
  EXPECT_THAT(second, HasSubstr("ocs_worker_device_memory_bytes{state=\"used\"} 3000\n"));
  EXPECT_THAT(second, HasSubstr("ocs_worker_device_memory_bytes{state=\"total\"} 80000\n"));

  auto cpu = WorkerMetrics::Serve("127.0.0.1:0", "cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_THAT(Scrape(**cpu), HasSubstr("ocs_worker_device_memory_bytes{state=\"total\"} 0\n"));
}

}  // namespace
}  // namespace ocs::worker::agent
