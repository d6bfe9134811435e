#include "worker/train/batches.h"

#include <gtest/gtest.h>

#include <set>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "common/lr_schedule.h"

namespace ocs::worker::train {
namespace {

ImageSet Numbered(int64_t n) {
  // Image i is filled with i, so batches reveal which examples they hold.
  return {
      at::arange(n, at::kFloat).view({n, 1, 1, 1}).expand({n, 1, 4, 4}).to(at::kByte).contiguous(),
      at::arange(n, at::kLong)};
}

std::vector<int64_t> Labels(const EpochBatches& batches) {
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < batches.size(); ++i) {
    const at::Tensor l = batches.Batch(i).second;
    labels.insert(labels.end(), l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
  }
  return labels;
}

TEST(EpochBatchesTest, RanksTakeDisjointShardsThatReshuffleEachEpoch) {
  const ImageSet set = Numbered(103);
  EpochBatches r0(set, 10, 0, 2, 7, 3, true), r1(set, 10, 1, 2, 7, 3, true);
  EXPECT_EQ(r0.size(), 5);  // 51 examples per rank, partial batch dropped
  const auto a = Labels(r0), b = Labels(r1);
  std::set<int64_t> seen(a.begin(), a.end());
  for (int64_t label : b) EXPECT_TRUE(seen.insert(label).second) << label;
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_NE(Labels(EpochBatches(set, 10, 0, 2, 7, 4, true)), a);  // another epoch, another order
  EXPECT_EQ(Labels(EpochBatches(set, 10, 0, 2, 7, 3, true)), a);  // same seed and epoch: same
}

TEST(EpochBatchesTest, EvaluationCoversEveryExampleOnce) {
  const ImageSet set = Numbered(103);
  std::set<int64_t> seen;
  for (int rank = 0; rank < 2; ++rank) {
    for (int64_t label : Labels(EpochBatches(set, 10, rank, 2, 0, 0, false))) {
      EXPECT_TRUE(seen.insert(label).second);
    }
  }
  EXPECT_EQ(seen.size(), 103u);
}

// The augmentation of one batch of `n` images, drawn as an epoch's would be.
Augmentation Draw(int64_t n, uint64_t seed) {
  const ImageSet set = Numbered(n);
  EpochBatches batches(set, n, 0, 1, seed, 0, true);
  at::Generator generator = at::detail::createCPUGenerator(seed);
  return DrawAugmentation(batches, generator, at::kCPU);
}

TEST(PreprocessTest, NormalisesAndAugmentsAsBatchedOps) {
  const at::Tensor images = at::full({64, 1, 8, 8}, 255, at::kByte);
  const Preprocessor preprocess({{0.5f}, {0.25f}}, at::kCPU);
  const at::Tensor plain = preprocess(images, nullptr);
  EXPECT_TRUE(at::allclose(plain, at::full({64, 1, 8, 8}, 2.0)));  // (1 − 0.5) / 0.25
  const Augmentation crops = Draw(64, 1);
  const at::Tensor augmented = preprocess(images, &crops);
  EXPECT_EQ(augmented.sizes(), plain.sizes());
  // Crops shifted into the zero padding show (0 − 0.5)/0.25 = −2 at a border: all but the
  // 1-in-81 crops that land exactly in the middle.
  const at::Tensor padded = augmented.eq(-2.0).any(3).any(2).view({64});
  EXPECT_GT(padded.sum().item<int64_t>(), 50);
  EXPECT_TRUE(augmented.eq(2.0).any().item<bool>());
}

TEST(PreprocessTest, CropAndFlipMoveThePixels) {
  // One image with a single bright pixel; every crop/flip keeps it inside or loses it to padding,
  // but never changes its value.
  at::Tensor images = at::zeros({32, 1, 8, 8}, at::kByte);
  images.select(2, 3).select(2, 4).fill_(255);
  const Augmentation crops = Draw(32, 3);
  const at::Tensor out = Preprocessor({{0.0f}, {1.0f}}, at::kCPU)(images, &crops);
  const at::Tensor bright = out.eq(1.0).sum({1, 2, 3});
  EXPECT_TRUE(bright.le(1).all().item<bool>());
  EXPECT_GT(bright.sum().item<int64_t>(), 16);
}

TEST(LearningRateTest, MultiStepAtFractionsOfTheRun) {
  common::OptimizerSpec optimizer;  // lr 0.1
  common::ScheduleSpec schedule;    // 0.3, 0.6, 0.8, 0.9; gamma 0.2
  EXPECT_DOUBLE_EQ(common::LearningRate(optimizer, schedule, 0, 1000), 0.1);
  EXPECT_DOUBLE_EQ(common::LearningRate(optimizer, schedule, 299, 1000), 0.1);
  EXPECT_DOUBLE_EQ(common::LearningRate(optimizer, schedule, 300, 1000), 0.02);
  EXPECT_NEAR(common::LearningRate(optimizer, schedule, 600, 1000), 0.004, 1e-15);
  EXPECT_NEAR(common::LearningRate(optimizer, schedule, 999, 1000), 0.1 * 0.2 * 0.2 * 0.2 * 0.2,
              1e-15);
}

TEST(LearningRateTest, CosineFromLrToZero) {
  common::OptimizerSpec optimizer;
  common::ScheduleSpec schedule;
  schedule.type = common::ScheduleType::kCosine;
  EXPECT_DOUBLE_EQ(common::LearningRate(optimizer, schedule, 0, 100), 0.1);
  EXPECT_NEAR(common::LearningRate(optimizer, schedule, 50, 100), 0.05, 1e-12);
  EXPECT_NEAR(common::LearningRate(optimizer, schedule, 100, 100), 0.0, 1e-12);
}

}  // namespace
}  // namespace ocs::worker::train
