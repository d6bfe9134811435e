// Why a rank stopped, as the worker tells the coordinator: out of memory is the job's to fix and
// is not restarted; anything else (a peer gone mid-collective) may be got past by a restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include <ATen/ATen.h>

#include "worker/train/trainer.h"

namespace ocs::worker::train {
namespace {

using ::testing::HasSubstr;

common::JobSpec CpuJob(int batch_size) {
  common::JobSpec spec;
  spec.resources.device = common::Device::kCpu;
  spec.training.batch_size = batch_size;
  return spec;
}

TEST(TrainingStoppedTest, OutOfMemoryIsResourceExhaustedAndNamesTheDeviceAndBatchSize) {
  try {
    at::empty({int64_t{1} << 48}, at::kFloat);
    FAIL() << "a petabyte was allocated";
  } catch (const std::exception& e) {
    const absl::Status stopped = TrainingStopped(e, CpuJob(4096));
    EXPECT_EQ(stopped.code(), absl::StatusCode::kResourceExhausted) << stopped;
    EXPECT_THAT(stopped.message(),
                HasSubstr("training stopped: out of memory on device cpu at "
                          "spec.training.batchSize 4096 (a smaller batch needs less): "));
    EXPECT_THAT(stopped.message(), HasSubstr("can't allocate memory"));
    EXPECT_TRUE(IsOutOfMemoryStop(stopped));
  }
}

TEST(TrainingStoppedTest, APeerGoneIsAborted) {
  const absl::Status stopped =
      TrainingStopped(std::runtime_error("pair.cc:598\nConnection closed by peer"), CpuJob(128));
  EXPECT_EQ(stopped.code(), absl::StatusCode::kAborted) << stopped;
  EXPECT_EQ(stopped.message(), "training stopped: Connection closed by peer");
  EXPECT_FALSE(IsOutOfMemoryStop(stopped));
  EXPECT_FALSE(IsOutOfMemoryStop(absl::ResourceExhaustedError("the artifact disk is full")));
}

}  // namespace
}  // namespace ocs::worker::train
