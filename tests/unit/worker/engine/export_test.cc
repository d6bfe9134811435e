#include "worker/engine/export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include <ATen/ATen.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>

#include "worker/engine/flops_target_search.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/surgery.h"

namespace ocs::worker::engine {
namespace {

class ExportTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ExportTest, TorchScriptLoadsAndMatchesTheLivePrunedModel) {
  const Network network = *BuildModel(GetParam(), 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 1);
  const SearchResult result =
      *SearchSubnetwork(network, groups, GroupSaliency(model, groups, true), {0.5});
  ASSERT_TRUE(PruneModel(model, groups, result.mask).ok());
  model.eval();

  const std::string path = ::testing::TempDir() + "/" + GetParam() + ".pt";
  ASSERT_TRUE(ExportTorchScript(model, path).ok());
  torch::jit::Module loaded = torch::jit::load(path);
  loaded.eval();
  const at::Tensor x = at::randn({3, 3, 32, 32});
  const at::Tensor expected = model.forward(x);
  const at::Tensor actual = loaded.forward({x}).toTensor();
  EXPECT_TRUE(at::allclose(expected, actual, 1e-5, 1e-6)) << (expected - actual).abs().max();
}

INSTANTIATE_TEST_SUITE_P(Zoo, ExportTest,
                         ::testing::Values("resnet20", "vgg11", "mobilenetv2_cifar"));

TEST(ExportTest, ReportsWidthsCostsAndTheMask) {
  const Network network = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 1);
  const SearchResult result =
      *SearchSubnetwork(network, groups, GroupSaliency(model, groups, true), {0.5});
  ASSERT_TRUE(PruneModel(model, groups, result.mask).ok());
  const auto report =
      nlohmann::json::parse(PruneReportJson(network, model.network(), groups, result.mask));
  EXPECT_EQ(report["before"]["flops"], result.dense_flops);
  EXPECT_EQ(report["after"]["flops"], result.pruned_flops);
  EXPECT_NEAR(report["flopsReduction"].get<double>(), 0.5, 5e-4);
  EXPECT_EQ(report["mask"].size(), static_cast<size_t>(groups.size()));
  EXPECT_EQ(report["mask"][1]["kept"].get<std::vector<int>>(), result.mask.groups[1].kept);
  const auto& first = report["layers"][0];
  EXPECT_EQ(first["name"], "conv1");
  EXPECT_EQ(first["outBefore"], 16);
  EXPECT_EQ(first["outAfter"], result.widths[1]);
}

}  // namespace
}  // namespace ocs::worker::engine
