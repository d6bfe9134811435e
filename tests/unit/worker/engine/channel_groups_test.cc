#include "worker/engine/channel_groups.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "worker/engine/flops.h"
#include "worker/engine/model_zoo.h"

namespace ocs::worker::engine {
namespace {

ChannelGroups Derive(const Network& network, GroupingOptions options = {}) {
  auto groups = ChannelGroups::Derive(network, options);
  EXPECT_TRUE(groups.ok()) << groups.status();
  return *std::move(groups);
}

int GroupOf(const ChannelGroups& groups, const Network& network, const char* layer) {
  return groups.layer_channels(*network.FindLayer(layer)).out.at(0).group;
}

TEST(MinKeptChannelsTest, FollowsTheLayerPruneLimit) {
  EXPECT_EQ(MinKeptChannels(1, 0.75), 1);    // 1 − ⌊0.75 · 0.632⌋
  EXPECT_EQ(MinKeptChannels(16, 0.75), 5);   // 16 − ⌊11.99999⌋
  EXPECT_EQ(MinKeptChannels(64, 0.75), 16);  // 64 − ⌊48 · (1 − e^−64)⌋ = 64 − 48
  EXPECT_EQ(MinKeptChannels(64, 0.0), 64);
}

TEST(ChannelGroupsTest, ResidualAdditionsTieAStageIntoOneGroup) {
  const Network net = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = Derive(net);
  // input, 3 residual stages, 9 block-internal groups, the logits.
  EXPECT_EQ(groups.size(), 14);
  const int stage1 = GroupOf(groups, net, "conv1");
  EXPECT_EQ(GroupOf(groups, net, "stage_1.0.conv_b"), stage1);
  EXPECT_EQ(GroupOf(groups, net, "stage_1.2.bn_b"), stage1);
  const int stage2 = GroupOf(groups, net, "stage_2.0.downsample.0");
  EXPECT_EQ(GroupOf(groups, net, "stage_2.2.conv_b"), stage2);
  EXPECT_NE(stage1, stage2);
  EXPECT_NE(GroupOf(groups, net, "stage_1.0.conv_a"), stage1);
  EXPECT_EQ(groups.group(stage1).name, "conv1");
  EXPECT_TRUE(groups.group(stage1).prunable);
  EXPECT_EQ(groups.group(stage1).min_kept, 5);

  // Stage 1's channels are produced by conv1 and the three conv_b, normalised by bn1 and the
  // three bn_b, and read by the three conv_a, stage 2's first conv_a and its shortcut.
  int producers = 0, batchnorms = 0, consumers = 0;
  for (const GroupMember& m : groups.group(stage1).members) {
    producers += m.role == MemberRole::kProducer;
    batchnorms += m.role == MemberRole::kBatchNorm;
    consumers += m.role == MemberRole::kConsumer;
  }
  EXPECT_EQ(producers, 4);
  EXPECT_EQ(batchnorms, 4);
  EXPECT_EQ(consumers, 5);
}

TEST(ChannelGroupsTest, InputAndLogitsAreNeverPruned) {
  const Network net = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = Derive(net);
  EXPECT_FALSE(groups.group(0).prunable);
  EXPECT_EQ(groups.group(0).fixed_reason, "network input");
  const int logits = GroupOf(groups, net, "classifier");
  EXPECT_FALSE(groups.group(logits).prunable);
  EXPECT_EQ(groups.group(logits).fixed_reason, "network output");
  EXPECT_EQ(groups.group(logits).min_kept, 10);
}

TEST(ChannelGroupsTest, IgnoredLayersKeepTheirChannels) {
  const Network net = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = Derive(net, {0.75, {"stage_2.1.conv_a"}});
  const int g = GroupOf(groups, net, "stage_2.1.conv_a");
  EXPECT_FALSE(groups.group(g).prunable);
  EXPECT_EQ(groups.group(g).fixed_reason, "ignored layer stage_2.1.conv_a");

  auto unknown = ChannelGroups::Derive(net, {0.75, {"stage_9.conv"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()),
              ::testing::HasSubstr("\"stage_9.conv\" is not a conv or linear layer"));
}

TEST(ChannelGroupsTest, ConcatenationOffsetsAndFlattenBlocks) {
  NetworkBuilder b({3, 4, 4});
  const int a = b.Conv("a", b.input(), 4, 3, 1, 1);
  const int c = b.Conv("c", b.input(), 6, 3, 1, 1);
  const int cat = b.Concat("cat", {a, c});
  const int d = b.Conv("d", cat, 5, 3, 2, 1);  // 2x2 output
  b.Linear("fc", b.Flatten("flatten", d), 3);
  const Network net = *std::move(b).Build();
  const ChannelGroups groups = Derive(net);

  const auto& d_in = groups.layer_channels(*net.FindLayer("d")).in;
  ASSERT_EQ(d_in.size(), 2u);
  EXPECT_EQ(d_in[0].group, GroupOf(groups, net, "a"));
  EXPECT_EQ(d_in[0].offset, 0);
  EXPECT_EQ(d_in[1].group, GroupOf(groups, net, "c"));
  EXPECT_EQ(d_in[1].offset, 4);

  const auto& fc_in = groups.layer_channels(*net.FindLayer("fc")).in;
  ASSERT_EQ(fc_in.size(), 1u);
  EXPECT_EQ(fc_in[0].group, GroupOf(groups, net, "d"));
  EXPECT_EQ(fc_in[0].block, 4);  // each of d's channels is 2x2 features

  std::vector<int> widths = groups.sizes();
  widths[GroupOf(groups, net, "c")] = 2;
  widths[GroupOf(groups, net, "d")] = 3;
  EXPECT_EQ(groups.InWidth(*net.FindLayer("d"), widths), 6);
  EXPECT_EQ(groups.InWidth(*net.FindLayer("fc"), widths), 12);
  const Network resized = groups.Resize(net, widths);
  EXPECT_EQ(resized.layer(cat).output_shape.channels, 6);
  EXPECT_EQ(resized.layer(*net.FindLayer("fc")).input_shape.channels, 12);
}

TEST(ChannelGroupsTest, DepthwiseConvsTieTheirInputToTheirOutput) {
  const Network net = *BuildModel("mobilenetv2_cifar", 10, {3, 32, 32});
  const ChannelGroups groups = Derive(net);
  // In an inverted residual block, the expansion conv, its BN, the depthwise conv and its BN
  // share one group.
  const int expand = GroupOf(groups, net, "features.2.conv.0.0");
  EXPECT_EQ(GroupOf(groups, net, "features.2.conv.1.0"), expand);
  EXPECT_EQ(GroupOf(groups, net, "features.2.conv.1.1"), expand);
  EXPECT_NE(GroupOf(groups, net, "features.2.conv.2"), expand);

  std::vector<int> widths = groups.sizes();
  widths[expand] = 50;
  const Network resized = groups.Resize(net, widths);
  const Layer& depthwise = resized.layer(*net.FindLayer("features.2.conv.1.0"));
  EXPECT_EQ(depthwise.groups, 50);
  EXPECT_EQ(depthwise.output_shape.channels, 50);
  EXPECT_TRUE(depthwise.is_depthwise());
}

TEST(ChannelGroupsTest, ResizedNetworkCostsWhatTheWidthModelPredicts) {
  for (const char* arch : {"resnet56", "vgg16", "resnet50", "mobilenetv2"}) {
    const Network net = *BuildModel(arch, 10, {3, 32, 32});
    const ChannelGroups groups = Derive(net);
    std::vector<int> widths = groups.sizes();
    for (int g = 0; g < groups.size(); ++g) {
      if (groups.group(g).prunable) widths[g] = groups.group(g).min_kept + g % 3;
    }
    const ModelCost predicted = WidthCostModel(net, groups).Cost(widths);
    const ModelCost actual = NetworkCost(groups.Resize(net, widths));
    EXPECT_EQ(predicted.flops, actual.flops) << arch;
    EXPECT_EQ(predicted.params, actual.params) << arch;
    EXPECT_EQ(WidthCostModel(net, groups).Cost(groups.sizes()).flops, NetworkCost(net).flops);
  }
}

TEST(ChannelGroupsTest, ResidualOperandsMustShareTheirLayout) {
  NetworkBuilder b({3, 4, 4});
  const int a = b.Conv("a", b.input(), 4, 3, 1, 1);
  const int c = b.Conv("c", b.input(), 2, 3, 1, 1);
  const int cat = b.Concat("cat", {c, c});
  b.Add("add", {a, cat});
  const Network net = *std::move(b).Build();
  auto groups = ChannelGroups::Derive(net, {});
  ASSERT_FALSE(groups.ok());
  EXPECT_THAT(std::string(groups.status().message()), ::testing::HasSubstr("layer add"));
}

}  // namespace
}  // namespace ocs::worker::engine
