// Group saliency of a tiny hand-made network against values computed by hand.
#include "worker/engine/group_saliency.h"

#include <gtest/gtest.h>

#include <cmath>

#include <ATen/ATen.h>

#include "worker/engine/regularization.h"

namespace ocs::worker::engine {
namespace {

// input [2, 4, 4] -> conv1 (2->3, 1x1) -> bn1 -> relu -> conv2 (3->2, 1x1) -> bn2 (output)
Network TinyNetwork() {
  NetworkBuilder b({2, 4, 4});
  const int x = b.Relu("relu", b.ConvBn("conv1", "bn1", b.input(), 3, 1, 1, 0));
  b.ConvBn("conv2", "bn2", x, 2, 1, 1, 0);
  return *std::move(b).Build();
}

void SetWeights(NetworkModel& model) {
  at::NoGradGuard no_grad;
  const Network& n = model.network();
  // conv1 filters (out x in): [1, 2], [0, 3], [2, 2]
  model.mutable_tensors(*n.FindLayer("conv1"))
      .weight.copy_(at::tensor({1.f, 2.f, 0.f, 3.f, 2.f, 2.f}).view({3, 2, 1, 1}));
  model.mutable_tensors(*n.FindLayer("bn1")).weight.copy_(at::tensor({0.5f, 1.f, 2.f}));
  // conv2 (out x in): [1, 0, 2], [1, 1, 0]
  model.mutable_tensors(*n.FindLayer("conv2"))
      .weight.copy_(at::tensor({1.f, 0.f, 2.f, 1.f, 1.f, 0.f}).view({2, 3, 1, 1}));
}

TEST(GroupSaliencyTest, MatchesHandComputedValues) {
  NetworkModel model(TinyNetwork(), 1);
  SetWeights(model);
  const ChannelGroups groups = *ChannelGroups::Derive(model.network(), {});
  ASSERT_EQ(groups.size(), 3);  // input, conv1's channels, conv2's channels (the output)
  const int g = 1;
  ASSERT_TRUE(groups.group(g).prunable);
  const auto importance = GroupSaliency(model, groups, /*cost_weighting=*/false);

  // Members: conv1 filter (numel 2), bn1 γ², conv2 input slice (numel 2 = out 2 · 1 · 1).
  const double r2 = std::sqrt(2.0);
  const double expected[3] = {
      (5.0 / r2 + 0.25 + 2.0 / r2) / 3,  // 1+4, 0.5², 1+1
      (9.0 / r2 + 1.00 + 1.0 / r2) / 3,  // 0+9, 1², 0+1
      (8.0 / r2 + 4.00 + 4.0 / r2) / 3,  // 4+4, 2², 4+0
  };
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(importance[g][c], expected[c], 1e-6) << c;
}

TEST(GroupSaliencyTest, CostWeightingScalesByOneMinusSoftmaxOfCost) {
  NetworkModel model(TinyNetwork(), 1);
  SetWeights(model);
  const ChannelGroups groups = *ChannelGroups::Derive(model.network(), {});
  const auto plain = GroupSaliency(model, groups, false);
  const auto weighted = GroupSaliency(model, groups, true);
  // One prunable group: softmax over it is 1, so the weight is 1 − 1 = 0.
  for (int c = 0; c < 3; ++c) EXPECT_EQ(weighted[1][c], 0.0f);
  EXPECT_EQ(weighted[0], plain[0]);  // fixed groups are left alone
}

TEST(ChannelRegularizerTest, DecoupledShrinksOnlyTheDroppedChannels) {
  NetworkModel model(TinyNetwork(), 1);
  SetWeights(model);
  const ChannelGroups groups = *ChannelGroups::Derive(model.network(), {});
  const common::Mask mask{{{2, {0, 1}}, {3, {0, 2}}, {2, {0, 1}}}};  // drops channel 1 of conv1
  ChannelRegularizer regularizer(model, groups, mask);
  EXPECT_EQ(regularizer.selected_channels(), 1);
  regularizer.ShrinkDecoupled(/*lambda=*/0.5, /*lr=*/0.2);  // factor 1 − 0.1
  const Network& n = model.network();
  EXPECT_TRUE(at::allclose(model.tensors(*n.FindLayer("conv1")).weight.flatten(),
                           at::tensor({1.f, 2.f, 0.f, 2.7f, 2.f, 2.f})));
  EXPECT_TRUE(
      at::allclose(model.tensors(*n.FindLayer("bn1")).weight, at::tensor({0.5f, 0.9f, 2.f})));
  EXPECT_TRUE(
      at::allclose(model.tensors(*n.FindLayer("bn1")).bias, at::zeros({3})));  // β untouched
  EXPECT_TRUE(at::allclose(model.tensors(*n.FindLayer("conv2")).weight.flatten(),
                           at::tensor({1.f, 0.f, 2.f, 1.f, 0.9f, 0.f})));
}

TEST(ChannelRegularizerTest, GroupLassoGradientIsLambdaTimesWOverItsGroupNorm) {
  NetworkModel model(TinyNetwork(), 1);
  SetWeights(model);
  const ChannelGroups groups = *ChannelGroups::Derive(model.network(), {});
  const common::Mask mask{{{2, {0, 1}}, {3, {0, 2}}, {2, {0, 1}}}};
  ChannelRegularizer regularizer(model, groups, mask);
  regularizer.AddGroupLassoGradient(0.5);
  // Channel 1's coupled weights: conv1 filter [0, 3], γ 1, conv2 slice [0, 1]: ‖·‖₂ = sqrt(11).
  const float scale = 0.5f / std::sqrt(11.0f);
  const Network& n = model.network();
  EXPECT_TRUE(at::allclose(model.tensors(*n.FindLayer("conv1")).weight.grad().flatten(),
                           at::tensor({0.f, 0.f, 0.f, 3 * scale, 0.f, 0.f})));
  EXPECT_TRUE(at::allclose(model.tensors(*n.FindLayer("bn1")).weight.grad(),
                           at::tensor({0.f, scale, 0.f})));
  EXPECT_TRUE(at::allclose(model.tensors(*n.FindLayer("conv2")).weight.grad().flatten(),
                           at::tensor({0.f, 0.f, 0.f, 0.f, scale, 0.f})));
}

}  // namespace
}  // namespace ocs::worker::engine
