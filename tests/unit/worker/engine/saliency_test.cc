// Group saliency of a tiny hand-made network against values computed by hand.
#include "worker/engine/group_saliency.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

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

// input [2, 4, 4] -> conv1 (2->3) -> bn1 -> relu -> conv2 (3->3) -> bn2 -> relu -> conv3 (3->2)
// -> bn3 (output), all `kernel` x `kernel`, every weight 1.
std::unique_ptr<NetworkModel> ThreeConvModel(int kernel = 1) {
  NetworkBuilder b({2, 4, 4});
  const int pad = kernel / 2;
  int x = b.Relu("relu1", b.ConvBn("conv1", "bn1", b.input(), 3, kernel, 1, pad));
  x = b.Relu("relu2", b.ConvBn("conv2", "bn2", x, 3, kernel, 1, pad));
  b.ConvBn("conv3", "bn3", x, 2, kernel, 1, pad);
  auto model = std::make_unique<NetworkModel>(*std::move(b).Build(), 1);
  at::NoGradGuard no_grad;
  for (at::Tensor& p : model->parameters()) p.fill_(1.0f);
  return model;
}

TEST(ChannelRegularizerTest, DecoupledShrinkRepeatsAndCountsEachDroppedChannelOfAnEntry) {
  const auto owner = ThreeConvModel();
  NetworkModel& model = *owner;
  const ChannelGroups groups = *ChannelGroups::Derive(model.network(), {});
  ASSERT_EQ(groups.size(), 4);  // input, conv1's, conv2's and conv3's (the output) channels
  // Drops channel 1 of conv1 and channel 2 of conv2: conv2's weight [2][1] belongs to both.
  const common::Mask mask{{{2, {0, 1}}, {3, {0, 2}}, {3, {0, 1}}, {2, {0, 1}}}};
  ChannelRegularizer regularizer(model, groups, mask);
  EXPECT_EQ(regularizer.selected_channels(), 2);
  regularizer.ShrinkDecoupled(/*lambda=*/0.5, /*lr=*/0.2);  // λ·lr = 0.1
  regularizer.ShrinkDecoupled(/*lambda=*/0.5, /*lr=*/0.2);
  const Network& n = model.network();
  // Out × in, row by row: row 2 is conv2's dropped filter, column 1 its dropped input channel.
  const at::Tensor conv2 = model.tensors(*n.FindLayer("conv2")).weight.flatten();
  EXPECT_TRUE(at::allclose(conv2, at::tensor({1.f, .81f, 1.f,  //
                                              1.f, .81f, 1.f,  //
                                              .81f, .64f, .81f})))
      << conv2;
  EXPECT_TRUE(
      at::allclose(model.tensors(*n.FindLayer("bn2")).weight, at::tensor({1.f, 1.f, .81f})));
  EXPECT_TRUE(at::allclose(model.tensors(*n.FindLayer("conv3")).weight.flatten(),
                           at::tensor({1.f, 1.f, .81f, 1.f, 1.f, .81f})));
}

TEST(ChannelRegularizerTest, DecoupledShrinkKeepsChannelsLastWeightsChannelsLast) {
  const auto owner = ThreeConvModel(/*kernel=*/3);
  NetworkModel& model = *owner;
  model.UseChannelsLast();
  const Network& n = model.network();
  const at::Tensor& conv2 = model.tensors(*n.FindLayer("conv2")).weight;
  ASSERT_TRUE(conv2.is_contiguous(at::MemoryFormat::ChannelsLast) && !conv2.is_contiguous());
  const ChannelGroups groups = *ChannelGroups::Derive(n, {});
  const common::Mask mask{{{2, {0, 1}}, {3, {0, 2}}, {3, {0, 1}}, {2, {0, 1}}}};
  ChannelRegularizer regularizer(model, groups, mask);
  regularizer.ShrinkDecoupled(/*lambda=*/0.5, /*lr=*/0.2);
  EXPECT_TRUE(conv2.is_contiguous(at::MemoryFormat::ChannelsLast));
  // Filter 2 and input channel 1 are dropped: factor 1 − 0.1 · (dropped channels of the entry).
  const at::Tensor dropped_out = at::tensor({0.f, 0.f, 1.f}).view({3, 1, 1, 1});
  const at::Tensor dropped_in = at::tensor({0.f, 1.f, 0.f}).view({1, 3, 1, 1});
  const at::Tensor expected = (1 - 0.1 * (dropped_out + dropped_in)).expand({3, 3, 3, 3});
  EXPECT_TRUE(at::allclose(conv2, expected)) << conv2;
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
