// Surgery is exact: a dense model whose dropped channels are silenced (BatchNorm γ = β = 0)
// computes what the physically pruned model computes. Compared in float64: in float32 the two
// sum their terms in different orders, and that rounding noise alone reaches 1e-5 in ResNet-56.
#include "worker/engine/surgery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include <ATen/ATen.h>
#include <torch/optim/sgd.h>

#include "worker/engine/flops.h"
#include "worker/engine/flops_target_search.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/optimizer_state.h"

namespace ocs::worker::engine {
namespace {

// Random-looking BatchNorm statistics and affine terms, so eval-mode outputs are not trivial.
void Perturb(NetworkModel& model, uint64_t seed) {
  at::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (int i = 0; i < model.network().size(); ++i) {
    if (model.network().layer(i).kind != LayerKind::kBatchNorm) continue;
    LayerTensors& t = model.mutable_tensors(i);
    t.weight.uniform_(0.5, 1.5, generator);
    t.bias.uniform_(-0.2, 0.2, generator);
    t.running_mean.uniform_(-0.1, 0.1, generator);
    t.running_var.uniform_(0.5, 1.5, generator);
  }
}

// Zeroes γ and β of every BatchNorm entry of a dropped channel.
void SilenceDropped(NetworkModel& model, const ChannelGroups& groups, const common::Mask& mask) {
  at::NoGradGuard no_grad;
  for (int g = 0; g < groups.size(); ++g) {
    std::vector<bool> kept(groups.group(g).size, false);
    for (int c : mask.groups[g].kept) kept[c] = true;
    for (const GroupMember& member : groups.group(g).members) {
      if (member.role != MemberRole::kBatchNorm) continue;
      LayerTensors& t = model.mutable_tensors(member.layer);
      for (int c = 0; c < groups.group(g).size; ++c) {
        if (kept[c]) continue;
        t.weight[member.segment.offset + c].fill_(0);
        t.bias[member.segment.offset + c].fill_(0);
      }
    }
  }
}

// A mask keeping only the floor of every prunable group, with random channels: cuts as deep
// into the residual stages as the prune limit allows.
common::Mask DeepMask(const ChannelGroups& groups, unsigned seed) {
  std::mt19937 random(seed);
  common::Mask mask;
  for (const ChannelGroup& group : groups.groups()) {
    std::vector<int> all(group.size);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), random);
    std::vector<int> kept(all.begin(), all.begin() + group.min_kept);
    std::sort(kept.begin(), kept.end());
    mask.groups.push_back({group.size, kept});
  }
  return mask;
}

struct Case {
  const char* arch;
  Shape input;
};

class SurgeryExactnessTest : public ::testing::TestWithParam<Case> {};

TEST_P(SurgeryExactnessTest, PrunedModelEqualsSilencedDenseModel) {
  const Network network = *BuildModel(GetParam().arch, 10, GetParam().input);
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  const Shape in = GetParam().input;
  const at::Tensor x =
      at::randn({2, in.channels, in.height, in.width}, at::detail::createCPUGenerator(3))
          .to(at::kDouble);

  NetworkModel scout(network, 1);
  const SearchResult searched =
      *SearchSubnetwork(network, groups, GroupSaliency(scout, groups, true), {0.5});
  for (const common::Mask& mask : {searched.mask, DeepMask(groups, 5)}) {
    NetworkModel model(network, 1);
    Perturb(model, 2);
    SilenceDropped(model, groups, mask);
    model.to(at::kDouble);
    model.eval();
    const at::Tensor dense_out = model.forward(x);
    ASSERT_TRUE(PruneModel(model, groups, mask).ok());
    const at::Tensor pruned_out = model.forward(x);
    EXPECT_LE((dense_out - pruned_out).abs().max().item<float>(), 1e-5) << GetParam().arch;

    std::vector<int> widths;
    for (const auto& group : mask.groups) widths.push_back(group.kept.size());
    EXPECT_EQ(NetworkCost(model.network()).flops,
              WidthCostModel(network, groups).Cost(widths).flops);
    int64_t parameters = 0;
    for (const at::Tensor& p : model.parameters()) parameters += p.numel();
    EXPECT_EQ(parameters, NetworkCost(model.network()).params);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, SurgeryExactnessTest,
    ::testing::Values(Case{"vgg11", {3, 32, 32}}, Case{"vgg13", {3, 32, 32}},
                      Case{"vgg16", {3, 32, 32}}, Case{"vgg19", {3, 32, 32}},
                      Case{"resnet20", {1, 28, 28}}, Case{"resnet32", {3, 32, 32}},
                      Case{"resnet56", {3, 32, 32}}, Case{"resnet110", {3, 32, 32}},
                      Case{"resnet18", {3, 64, 64}}, Case{"resnet34", {3, 64, 64}},
                      Case{"resnet50", {3, 64, 64}}, Case{"mobilenetv2_cifar", {3, 32, 32}},
                      Case{"mobilenetv2", {3, 64, 64}}),
    [](const auto& info) { return std::string(info.param.arch); });

TEST(SurgeryTest, PredictedFlopsOfTheSearchAreExact) {
  const Network network = *BuildModel("resnet56", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 4);
  const SearchResult result =
      *SearchSubnetwork(network, groups, GroupSaliency(model, groups, true), {0.5});
  ASSERT_TRUE(PruneModel(model, groups, result.mask).ok());
  EXPECT_EQ(NetworkCost(model.network()).flops, result.pruned_flops);
  EXPECT_EQ(NetworkCost(model.network()).params, result.pruned_params);
}

TEST(SurgeryTest, CarriesMomentumBuffersAndKeepsTraining) {
  const Network network = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 1);
  torch::optim::SGD sgd(model.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const at::Tensor x = at::randn({4, 3, 32, 32});
  const at::Tensor y = at::randint(0, 10, {4}, at::kLong);
  auto step = [&] {
    sgd.zero_grad();
    at::cross_entropy_loss(model.forward(x), y).backward();
    sgd.step();
  };
  step();
  const int conv_a = *network.FindLayer("stage_1.0.conv_a");
  const at::Tensor& weight = model.tensors(conv_a).weight;
  auto buffer_of = [&](const at::Tensor& p) {
    auto& state = sgd.state().at(OptimizerStateKey(p));
    return static_cast<torch::optim::SGDParamState&>(*state).momentum_buffer();
  };
  const at::Tensor buffer_before = buffer_of(weight).clone();

  const common::Mask mask = DeepMask(groups, 9);
  ASSERT_TRUE(PruneModel(model, groups, mask, CarryOptimizerState(sgd)).ok());
  const auto& out_kept = mask.groups[groups.layer_channels(conv_a).out[0].group].kept;
  const auto& in_kept = mask.groups[groups.layer_channels(conv_a).in[0].group].kept;
  const at::Tensor expected = buffer_before.index_select(0, at::tensor(out_kept, at::kLong))
                                  .index_select(1, at::tensor(in_kept, at::kLong));
  EXPECT_TRUE(at::equal(buffer_of(weight), expected));
  for (const at::Tensor& p : model.parameters()) {
    EXPECT_EQ(buffer_of(p).sizes(), p.sizes());
  }
  step();  // the optimizer goes on with the pruned parameters
  EXPECT_TRUE(at::isfinite(model.forward(x)).all().item<bool>());
}

TEST(SurgeryTest, RejectsAMaskOfAnotherModel) {
  const Network network = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 1);
  common::Mask mask = common::DenseMask(groups.sizes());
  mask.groups.pop_back();
  EXPECT_EQ(PruneModel(model, groups, mask).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model.network().size(), network.size());
}

TEST(NetworkModelTest, NamesParametersLikePyTorch) {
  NetworkModel model(*BuildModel("resnet20", 10, {3, 32, 32}), 1);
  const auto parameters = model.named_parameters();
  EXPECT_NE(parameters.find("stage_2.1.conv_b.weight"), nullptr);
  EXPECT_NE(parameters.find("stage_2.0.downsample.1.bias"), nullptr);
  EXPECT_NE(parameters.find("classifier.weight"), nullptr);
  EXPECT_NE(model.named_buffers().find("bn1.running_var"), nullptr);
}

TEST(NetworkModelTest, ChannelsLastComputesTheSame) {
  NetworkModel model(*BuildModel("mobilenetv2_cifar", 10, {3, 32, 32}), 1);
  model.eval();
  const at::Tensor x = at::randn({2, 3, 32, 32});
  const at::Tensor expected = model.forward(x);
  model.UseChannelsLast();
  const int conv = *model.network().FindLayer("features.2.conv.1.0");
  EXPECT_TRUE(model.tensors(conv).weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(at::allclose(model.forward(x.contiguous(at::MemoryFormat::ChannelsLast)), expected,
                           1e-4, 1e-5));
}

TEST(NetworkModelTest, SameSeedSameWeights) {
  const Network network = *BuildModel("vgg11", 10, {3, 32, 32});
  NetworkModel a(network, 42), b(network, 42), c(network, 43);
  const auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  EXPECT_TRUE(at::equal(pa[0], pb[0]));
  EXPECT_FALSE(at::equal(pa[0], pc[0]));
}

}  // namespace
}  // namespace ocs::worker::engine
