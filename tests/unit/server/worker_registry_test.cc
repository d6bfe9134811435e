#include "server/worker_registry.h"

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

TEST_F(WorkerRegistryTest, HeartbeatsKeepALeaseAndMissedOnesLoseIt) {
  const std::string id = registry_.Register("h", common::Device::kCpu, 2, "0.1.0")->id;
  now_ms_ += 29'000;
  EXPECT_TRUE(registry_.Heartbeat(id).ok());
  now_ms_ += 29'000;
  EXPECT_TRUE(registry_.Alive(registry_.List()[0]));
  now_ms_ += 2'000;  // 31 s since the last heartbeat
  EXPECT_FALSE(registry_.Alive(registry_.List()[0]));
  EXPECT_EQ(registry_.ExpireLeases(), std::vector<std::string>{id});
  EXPECT_TRUE(registry_.List().empty());
  EXPECT_EQ(registry_.Heartbeat(id).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(registry_.Heartbeat("worker-unknown").message(), HasSubstr("register again"));
}

}  // namespace
}  // namespace ocs::server
