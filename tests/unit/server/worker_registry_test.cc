#include "server/worker_registry.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ocs::server {
namespace {

using ::testing::HasSubstr;

class WorkerRegistryTest : public ::testing::Test {
 protected:
  int64_t now_ms_ = 10'000;
  WorkerRegistry registry_{[this] { return now_ms_; }, /*lease_seconds=*/30, "0.1.0"};
};

TEST_F(WorkerRegistryTest, RegistersWithUniqueIdsAndFreeSlots) {
  auto a = registry_.Register("host-a", common::Device::kCuda, 8, "0.1.0");
  auto b = registry_.Register("host-a", common::Device::kCuda, 8, "0.1.0");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
  EXPECT_THAT(a->id, ::testing::StartsWith("worker-"));
  EXPECT_EQ(a->free_slots, 8);
  EXPECT_EQ(registry_.List().size(), 2u);
}

TEST_F(WorkerRegistryTest, ValidatesEveryField) {
  EXPECT_THAT(registry_.Register("", common::Device::kCpu, 1, "0.1.0").status().message(),
              HasSubstr("host"));
  EXPECT_THAT(registry_.Register("h", common::Device::kCpu, 0, "0.1.0").status().message(),
              HasSubstr("slots: must be in [1, 64], got 0"));
  EXPECT_THAT(registry_.Register("h", common::Device::kCpu, 65, "0.1.0").status().message(),
              HasSubstr("got 65"));
  EXPECT_THAT(registry_.Register("h", common::Device::kCpu, 1, "9.9.9").status().message(),
              HasSubstr("worker 9.9.9 cannot join coordinator 0.1.0"));
  EXPECT_TRUE(registry_.List().empty());
}

// A worker whose session broke registers again, naming its old id: the old registration runs out
// its lease (its ranks may be claimed meanwhile) and is no loss. Another worker cannot hide one.
TEST_F(WorkerRegistryTest, ARegistrationItsWorkerReplacedIsNotCountedAsLost) {
  const std::string old_id = registry_.Register("h", common::Device::kCpu, 2, "0.1.0")->id;
  const std::string other = registry_.Register("g", common::Device::kCpu, 2, "0.1.0")->id;
  const std::string gpu = registry_.Register("h", common::Device::kCuda, 1, "0.1.0")->id;
  now_ms_ += 5'000;
  const std::string again = registry_.Register("h", common::Device::kCpu, 2, "0.1.0", old_id)->id;
  ASSERT_TRUE(registry_.Register("f", common::Device::kCpu, 2, "0.1.0", other).ok());
  ASSERT_TRUE(registry_.Register("h", common::Device::kCpu, 2, "0.1.0", gpu).ok());
  ASSERT_TRUE(registry_.Register("h", common::Device::kCpu, 2, "0.1.0", "worker-gone").ok());
  EXPECT_EQ(registry_.List().size(), 7u);  // the old ones stay until their lease runs out
  now_ms_ += 26'000;
  std::vector<std::string> expired, replaced;
  for (const auto& [id, was_replaced] : registry_.ExpireLeases()) {
    expired.push_back(id);
    if (was_replaced) replaced.push_back(id);
  }
  std::sort(expired.begin(), expired.end());
  std::vector<std::string> first = {old_id, other, gpu};
  std::sort(first.begin(), first.end());
  EXPECT_EQ(expired, first);
  EXPECT_EQ(replaced, std::vector<std::string>{old_id});
  EXPECT_EQ(registry_.LostCount(), 2);  // `other` and `gpu`: not replaced by the same worker
  EXPECT_TRUE(registry_.Contains(again));
}

// A heartbeat shows that a registration is alive: whoever named it as replaced cannot hide its
// worker's loss.
TEST_F(WorkerRegistryTest, AReplacedRegistrationThatStillHeartbeatsCountsWhenLost) {
  const std::string live = registry_.Register("h", common::Device::kCpu, 1, "0.1.0")->id;
  ASSERT_TRUE(registry_.Register("h", common::Device::kCpu, 1, "0.1.0", live).ok());
  now_ms_ += 10'000;
  ASSERT_TRUE(registry_.Heartbeat(live).ok());
  now_ms_ += 31'000;
  const auto expired = registry_.ExpireLeases();
  EXPECT_EQ(expired.size(), 2u);
  for (const auto& lease : expired) EXPECT_FALSE(lease.replaced) << lease.worker_id;
  EXPECT_EQ(registry_.LostCount(), 2);
}

// A worker that says goodbye is dropped at once and not counted as lost.
TEST_F(WorkerRegistryTest, AWorkerThatLeftIsDroppedWithoutCountingAsLost) {
  const std::string id = registry_.Register("h", common::Device::kCpu, 1, "0.1.0")->id;
  registry_.Unregister(id);
  EXPECT_FALSE(registry_.Contains(id));
  EXPECT_EQ(registry_.Heartbeat(id).code(), absl::StatusCode::kNotFound);
  now_ms_ += 31'000;
  EXPECT_TRUE(registry_.ExpireLeases().empty());
  EXPECT_EQ(registry_.LostCount(), 0);
}

TEST_F(WorkerRegistryTest, HeartbeatsKeepALeaseAndMissedOnesLoseIt) {
  const std::string id = registry_.Register("h", common::Device::kCpu, 2, "0.1.0")->id;
  now_ms_ += 29'000;
  EXPECT_TRUE(registry_.Heartbeat(id).ok());
  now_ms_ += 29'000;
  EXPECT_TRUE(registry_.Alive(registry_.List()[0]));
  now_ms_ += 2'000;  // 31 s since the last heartbeat
  EXPECT_FALSE(registry_.Alive(registry_.List()[0]));
  const std::vector<WorkerRegistry::ExpiredLease> lost = {{id, false}};
  EXPECT_EQ(registry_.ExpireLeases(), lost);
  EXPECT_TRUE(registry_.List().empty());
  EXPECT_EQ(registry_.Heartbeat(id).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(registry_.Heartbeat("worker-unknown").message(), HasSubstr("register again"));
}

}  // namespace
}  // namespace ocs::server
