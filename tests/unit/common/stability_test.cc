// The stability indicator against sequences computed by hand.
#include "common/stability.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ocs::common {
namespace {

// A one-group mask of 4 channels keeping `kept`.
Mask Keep(std::vector<int> kept) { return Mask{{GroupMask{4, std::move(kept)}}}; }

TEST(JaccardTest, HandComputedValues) {
  EXPECT_DOUBLE_EQ(GroupJaccard({4, {0, 1}}, {4, {0, 1}}), 1.0);
  EXPECT_DOUBLE_EQ(GroupJaccard({4, {0, 1}}, {4, {1, 2}}), 1.0 / 3);  // {1} / {0,1,2}
  EXPECT_DOUBLE_EQ(GroupJaccard({4, {0, 1}}, {4, {2, 3}}), 0.0);
  EXPECT_DOUBLE_EQ(GroupJaccard({4, {0, 1, 2}}, {4, {0, 1, 3}}), 0.5);  // {0,1} / {0,1,2,3}
}

TEST(JaccardTest, MaskSimilarityAveragesOverGroups) {
  const Mask a{{GroupMask{4, {0, 1}}, GroupMask{2, {0}}}};
  const Mask b{{GroupMask{4, {1, 2}}, GroupMask{2, {0}}}};
  EXPECT_DOUBLE_EQ(*MaskSimilarity(a, b), (1.0 / 3 + 1.0) / 2);
  EXPECT_FALSE(MaskSimilarity(a, Keep({0})).ok());
}

TEST(StabilityTrackerTest, HandComputedSequence) {
  StabilitySpec spec;  // history 3, window 3
  StabilityTracker tracker(spec);
  // Masks per epoch 5..10; J_t compares M_t with M_(t-2), J̄_t averages the last 3 J.
  const std::vector<Mask> masks = {Keep({0, 1}), Keep({1, 2}), Keep({0, 1, 2}),
                                   Keep({1, 2}), Keep({1, 2}), Keep({1, 2})};
  const std::vector<double> j = {0, 0, 2.0 / 3, 1.0, 2.0 / 3, 1.0};
  const std::vector<double> j_bar = {
      0, 0, (2.0 / 3) / 3, (2.0 / 3 + 1) / 3, (2.0 / 3 + 1 + 2.0 / 3) / 3, (1 + 2.0 / 3 + 1) / 3};
  for (size_t i = 0; i < masks.size(); ++i) {
    auto point = tracker.Observe(5 + static_cast<int>(i), masks[i]);
    ASSERT_TRUE(point.ok()) << point.status();
    EXPECT_EQ(point->epoch, 5 + static_cast<int>(i));
    EXPECT_NEAR(point->j, j[i], 1e-12) << "epoch " << 5 + i;
    EXPECT_NEAR(point->j_bar, j_bar[i], 1e-12) << "epoch " << 5 + i;
  }
  EXPECT_EQ(tracker.series().size(), masks.size());
  EXPECT_EQ(tracker.recent_masks().size(), 3u);
}

TEST(StabilityTrackerTest, RejectsEpochsOutOfOrderAndForeignMasks) {
  StabilityTracker tracker(StabilitySpec{});
  ASSERT_TRUE(tracker.Observe(5, Keep({0})).ok());
  EXPECT_EQ(tracker.Observe(7, Keep({0})).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tracker.Observe(5, Keep({0})).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tracker.Observe(6, Mask{{GroupMask{8, {0}}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tracker.series().size(), 1u);  // nothing was recorded by the rejected calls
}

TEST(StabilityRuleTest, PrunesWhenStableOrAtTheDeadline) {
  StabilitySpec spec;
  spec.threshold = 0.999;
  spec.sparsity_end_epoch = 130;
  EXPECT_FALSE(ShouldPrune(spec, 50, 0.998));
  EXPECT_TRUE(ShouldPrune(spec, 50, 0.999));
  EXPECT_TRUE(ShouldPrune(spec, 130, 0.2));
  EXPECT_FALSE(ShouldPrune(spec, 129, 0.2));
}

TEST(StabilityRuleTest, AutoSparsityStartIsTheFirstFlatEpochAfterThree) {
  StabilitySpec spec;
  // J̄ by epoch:       2     3     4     5     6      7      8
  const std::vector<StabilityPoint> series = {{2, 0, 0},        {3, 0, 0},     {4, 0.5, 0.2},
                                              {5, 0.6, 0.4},    {6, 0.9, 0.6}, {7, 0.9, 0.7},
                                              {8, 0.9, 0.60005}};
  // Epoch 4: 0.2 − 0 > 1e-4. 5: 0.4 − 0 . 6: 0.6 − 0.2. 7: 0.7 − 0.4. 8: 0.60005 − 0.6 <= 1e-4.
  EXPECT_EQ(AutoSparsityStart(spec, series), 8);
  EXPECT_EQ(AutoSparsityStart(spec, {series.begin(), series.end() - 1}), std::nullopt);
}

TEST(RegularizationLambdaTest, FollowsTheOfficialSchedule) {
  RegularizationSpec spec;  // lambda 1e-4, delta 1e-4, interval 1
  EXPECT_EQ(RegularizationLambda(spec, 30, 30), 0.0);
  EXPECT_EQ(RegularizationLambda(spec, 30, 31), 0.0);
  EXPECT_DOUBLE_EQ(RegularizationLambda(spec, 30, 32), 2e-4);
  EXPECT_DOUBLE_EQ(RegularizationLambda(spec, 30, 33), 3e-4);
  spec.interval = 3;
  EXPECT_DOUBLE_EQ(RegularizationLambda(spec, 30, 32), 2e-4);
  EXPECT_DOUBLE_EQ(RegularizationLambda(spec, 30, 34), 2e-4);
  EXPECT_DOUBLE_EQ(RegularizationLambda(spec, 30, 35), 3e-4);
}

// J needs `history` masks and J̄ averages in the zeros before them: with unchanging masks from
// monitorStartEpoch m, J̄ is 1/3, 2/3, 1 at m+2, m+3, m+4 under the defaults (history 3, window 3).
TEST(EarliestStableEpochTest, CountsTheMasksJAndTheWindowNeed) {
  StabilitySpec spec;  // monitor 5, history 3, window 3, threshold 0.999
  EXPECT_EQ(EarliestStableEpoch(spec), 9);
  spec.threshold = 0.6;
  EXPECT_EQ(EarliestStableEpoch(spec), 8);  // 2/3
  spec.threshold = 0.3;
  EXPECT_EQ(EarliestStableEpoch(spec), 7);  // 1/3
  spec = {};
  spec.history = 2;
  spec.window = 1;
  EXPECT_EQ(EarliestStableEpoch(spec), 6);
  spec.window = 100;
  EXPECT_EQ(EarliestStableEpoch(spec), 105);
}

}  // namespace
}  // namespace ocs::common
