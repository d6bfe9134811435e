// What a rank that stopped tells the coordinator in service mode: out of memory alone is the job's
// and calls off any restart; beside other ranks it may restart, and says why; a peer gone may
// restart; anything else fails the job.
#include "worker/commands/rank_stop.h"

#include <gtest/gtest.h>

#include <new>

#include "absl/strings/str_cat.h"
#include "worker/train/trainer.h"

namespace ocs::worker::commands {
namespace {

using agent::RankFailure;

absl::Status OutOfMemory() {
  common::JobSpec spec;
  spec.training.batch_size = 512;
  return train::TrainingStopped(std::bad_alloc(), spec);
}

TEST(RankStopTest, OutOfMemoryAloneIsTheJobsSizesAndSaysSo) {
  ASSERT_TRUE(train::IsOutOfMemoryStop(OutOfMemory())) << OutOfMemory();
  const RankStop stop = DescribeStop(OutOfMemory(), 0);
  EXPECT_EQ(stop.failure, RankFailure::kOutOfMemory);
  EXPECT_EQ(stop.message, OutOfMemory().message());
}

TEST(RankStopTest, OutOfMemoryBesideOtherRanksMayRestartAndSaysWhy) {
  const RankStop stop = DescribeStop(OutOfMemory(), 2);
  EXPECT_EQ(stop.failure, RankFailure::kRetryable);
  EXPECT_EQ(stop.message,
            absl::StrCat(OutOfMemory().message(),
                         " (beside 2 other rank(s) sharing this worker's memory: may restart)"));
}

TEST(RankStopTest, APeerGoneMayRestartAndAnythingElseFailsTheJob) {
  EXPECT_EQ(
      DescribeStop(absl::AbortedError("training stopped: Connection closed by peer"), 0).failure,
      RankFailure::kRetryable);
  EXPECT_EQ(DescribeStop(absl::UnavailableError("rendezvous timed out"), 1).failure,
            RankFailure::kRetryable);
  // The other ranks' stop after the coordinator cancelled them calls nothing off.
  const RankStop cancelled = DescribeStop(absl::CancelledError("cancelled: rank 1 failed"), 0);
  EXPECT_EQ(cancelled.failure, RankFailure::kOfTheJob);
  EXPECT_EQ(cancelled.message, "cancelled: rank 1 failed");
  EXPECT_EQ(DescribeStop(absl::InvalidArgumentError("spec.model.arch"), 0).failure,
            RankFailure::kOfTheJob);
}

}  // namespace
}  // namespace ocs::worker::commands
