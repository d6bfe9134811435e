#include "worker/engine/flops_target_search.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "worker/engine/flops.h"
#include "worker/engine/model_zoo.h"

namespace ocs::worker::engine {
namespace {

std::vector<std::vector<float>> RandomImportance(const ChannelGroups& groups, unsigned seed) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<std::vector<float>> importance;
  for (const ChannelGroup& group : groups.groups()) {
    std::vector<float> values(group.size);
    for (float& v : values) v = uniform(random);
    importance.push_back(std::move(values));
  }
  return importance;
}

struct Case {
  const char* arch;
  Shape input;
};

class SearchTargetsTest : public ::testing::TestWithParam<Case> {};

TEST_P(SearchTargetsTest, HitsTargetsWithinToleranceOrReportsTheCap) {
  const Network net = *BuildModel(GetParam().arch, 10, GetParam().input);
  const ChannelGroups groups = *ChannelGroups::Derive(net, {});
  for (double target : {0.3, 0.5, 0.7}) {
    auto result = SearchSubnetwork(net, groups, RandomImportance(groups, 7), {target});
    ASSERT_TRUE(result.ok()) << result.status();
    if (result->max_reduction >= target) {
      EXPECT_TRUE(result->reached) << GetParam().arch << " " << target << ": " << result->note;
      EXPECT_NEAR(result->achieved_reduction, target, 5e-4) << GetParam().arch;
    } else {
      EXPECT_FALSE(result->reached);
      EXPECT_THAT(result->note, ::testing::HasSubstr("unreachable"));
    }
    // The mask describes the widths, respects the floors, and the pruned network built from
    // those widths has exactly the predicted FLOPs.
    ASSERT_TRUE(common::CheckMaskFitsModel(result->mask, groups.sizes()).ok());
    for (int g = 0; g < groups.size(); ++g) {
      EXPECT_EQ(static_cast<int>(result->mask.groups[g].kept.size()), result->widths[g]);
      EXPECT_GE(result->widths[g], groups.group(g).min_kept);
    }
    const ModelCost pruned = NetworkCost(groups.Resize(net, result->widths));
    EXPECT_EQ(pruned.flops, result->pruned_flops);
    EXPECT_EQ(pruned.params, result->pruned_params);
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, SearchTargetsTest,
                         ::testing::Values(Case{"resnet56", {3, 32, 32}},
                                           Case{"vgg16", {3, 32, 32}},
                                           Case{"resnet50", {3, 224, 224}},
                                           Case{"mobilenetv2", {3, 224, 224}},
                                           Case{"resnet20", {1, 28, 28}}),
                         [](const auto& info) { return std::string(info.param.arch); });

TEST(SearchTest, KeepsTheMostImportantChannelsOfEachGroup) {
  const Network net = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(net, {});
  const auto importance = RandomImportance(groups, 3);
  const SearchResult result = *SearchSubnetwork(net, groups, importance, {0.5});
  for (int g = 0; g < groups.size(); ++g) {
    const auto& kept = result.mask.groups[g].kept;
    float weakest_kept = 2.0f, strongest_pruned = -1.0f;
    for (int c = 0; c < groups.group(g).size; ++c) {
      const bool is_kept = std::binary_search(kept.begin(), kept.end(), c);
      (is_kept ? weakest_kept : strongest_pruned) =
          is_kept ? std::min(weakest_kept, importance[g][c])
                  : std::max(strongest_pruned, importance[g][c]);
    }
    EXPECT_LT(strongest_pruned, weakest_kept) << "group " << g;
  }
}

TEST(SearchTest, RoundToKeepsWidthsMultiples) {
  const Network net = *BuildModel("vgg16", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(net, {});
  const SearchResult result =
      *SearchSubnetwork(net, groups, RandomImportance(groups, 5), {0.5, /*round_to=*/8});
  for (int g = 0; g < groups.size(); ++g) {
    if (result.widths[g] != groups.group(g).size) {
      EXPECT_EQ(result.widths[g] % 8, 0);
    }
  }
  EXPECT_NEAR(result.achieved_reduction, 0.5, 0.01);
}

TEST(SearchTest, ReportsAnUnreachableTarget) {
  const Network net = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(net, {/*layer_prune_limit=*/0.2, {}});
  const SearchResult result = *SearchSubnetwork(net, groups, RandomImportance(groups, 1), {0.9});
  EXPECT_FALSE(result.reached);
  EXPECT_LT(result.max_reduction, 0.9);
  EXPECT_NEAR(result.achieved_reduction, result.max_reduction, 1e-9);
  EXPECT_THAT(result.note, ::testing::HasSubstr("target 0.9000 is unreachable"));
}

TEST(SearchTest, RejectsImportanceOfTheWrongShape) {
  const Network net = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(net, {});
  auto importance = RandomImportance(groups, 1);
  importance[2].pop_back();
  EXPECT_EQ(SearchSubnetwork(net, groups, importance, {0.5}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ocs::worker::engine
