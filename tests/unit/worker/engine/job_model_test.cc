#include "worker/engine/job_model.h"

#include <gtest/gtest.h>

namespace ocs::worker::engine {
namespace {

common::JobSpec Spec(const std::string& arch, std::vector<int> input_shape) {
  common::JobSpec spec;
  spec.model.arch = arch;
  spec.model.input_shape = std::move(input_shape);
  return spec;
}

TEST(JobModelTest, GroupsOfAValidSpec) {
  const auto groups = JobChannelGroups(Spec("resnet20", {3, 32, 32}));
  ASSERT_TRUE(groups.ok()) << groups.status();
  EXPECT_EQ(groups->size(), 14);
  EXPECT_TRUE(JobModelErrors(Spec("resnet20", {3, 32, 32})).empty());
}

TEST(JobModelTest, AnUnknownIgnoredLayerIsReportedAtItsField) {
  common::JobSpec spec = Spec("resnet20", {3, 32, 32});
  spec.pruning.ignored_layers = {"no_such_layer"};
  const auto errors = JobModelErrors(spec);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "spec.pruning.ignoredLayers");
  EXPECT_EQ(errors[0].problem.rfind("\"no_such_layer\" is not a conv or linear layer", 0), 0u)
      << errors[0].problem;
}

TEST(JobModelTest, AnInputTooSmallForTheArchitectureIsReportedAtTheModel) {
  const auto errors = JobModelErrors(Spec("vgg16", {1, 1, 1}));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "spec.model");
  EXPECT_EQ(errors[0].problem.rfind("vgg16 cannot take input [1, 1, 1]", 0), 0u)
      << errors[0].problem;
}

}  // namespace
}  // namespace ocs::worker::engine
