// `ocs-worker model inspect|search` as users run them: output, JSON and exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

using ::testing::HasSubstr;

TEST(WorkerModelTest, InspectPrintsCostsAndGroups) {
  const CommandResult result =
      RunCommand({OCS_WORKER_BIN, "model", "inspect", "--arch", "resnet56"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("FLOPs 125.748 M (125747840 multiply-accumulates"));
  EXPECT_THAT(result.out, HasSubstr("parameters 0.856 M (855770)"));
  EXPECT_THAT(result.out, HasSubstr("no: network output"));
  EXPECT_THAT(result.out, HasSubstr("stage_3.8.conv_a"));
}

TEST(WorkerModelTest, InspectJsonTakesTheModelFromAJob) {
  const CommandResult result = RunCommand({OCS_WORKER_BIN, "model", "inspect", "--job",
                                           "examples/resnet20-fashion-mnist.yaml", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["arch"], "resnet20");
  EXPECT_EQ(json["inputShape"], nlohmann::json({1, 28, 28}));
  EXPECT_EQ(json["flops"], 31021952);
  EXPECT_EQ(json["groups"].size(), 14u);
  EXPECT_EQ(json["groups"][1]["name"], "conv1");
  EXPECT_EQ(json["groups"][1]["minKept"], 5);
}

TEST(WorkerModelTest, SearchHitsTheTargetAndReportsItsWallTime) {
  const CommandResult result = RunCommand({OCS_WORKER_BIN, "model", "search", "--arch", "vgg16",
                                           "--target", "0.3", "--seed", "4", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_NEAR(json["achievedReduction"].get<double>(), 0.3, 5e-4);
  EXPECT_TRUE(json["reached"].get<bool>());
  EXPECT_GT(json["wallTimeMs"]["search"].get<double>(), 0.0);
  EXPECT_EQ(json["seed"], 4);
  // Same seed, same mask.
  const CommandResult again = RunCommand({OCS_WORKER_BIN, "model", "search", "--arch", "vgg16",
                                          "--target", "0.3", "--seed", "4", "--json"});
  EXPECT_EQ(nlohmann::json::parse(again.out)["groups"], json["groups"]);

  const CommandResult text =
      RunCommand({OCS_WORKER_BIN, "model", "search", "--arch", "resnet20", "--target", "0.5"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, HasSubstr("target reached"));
  EXPECT_THAT(text.out, HasSubstr("wall time: saliency"));
}

TEST(WorkerModelTest, ExitCodes) {
  // Bad arguments and invalid jobs: 2.
  EXPECT_EQ(RunCommand({OCS_WORKER_BIN, "model", "inspect"}).exit_code, 2);
  EXPECT_EQ(RunCommand({OCS_WORKER_BIN, "model", "search", "--arch", "resnet56", "--target", "1.5"})
                .exit_code,
            2);
  const CommandResult unknown =
      RunCommand({OCS_WORKER_BIN, "model", "inspect", "--arch", "resnet5"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("did you mean"));
  const std::string bad_job = ::testing::TempDir() + "/bad-job.yaml";
  std::ofstream(bad_job) << "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: x}\n"
                            "spec: {model: {arch: vgg16}, data: {dataset: synthetic}, "
                            "pruning: {ignoredLayers: [features.99]}}\n";
  const CommandResult ignored = RunCommand({OCS_WORKER_BIN, "model", "inspect", "--job", bad_job});
  EXPECT_EQ(ignored.exit_code, 2);
  EXPECT_THAT(ignored.err, HasSubstr("\"features.99\" is not a conv or linear layer"));
  std::ofstream(bad_job) << "spec: {}\n";
  const CommandResult invalid = RunCommand({OCS_WORKER_BIN, "model", "search", "--job", bad_job});
  EXPECT_EQ(invalid.exit_code, 2);
  EXPECT_THAT(invalid.err, HasSubstr("apiVersion: is required"));
  // A target the prune limit cannot reach: 1, with the reason.
  const CommandResult unreachable =
      RunCommand({OCS_WORKER_BIN, "model", "search", "--arch", "resnet20", "--target", "0.95"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_THAT(unreachable.err, HasSubstr("unreachable"));
}

// --arch, --num-classes and --input take the ranges a job spec allows (they used to reach the
// model unchecked: a negative class count aborted `search`, zero classes were accepted).
TEST(WorkerModelTest, ArchFlagsTakeTheJobSpecsRanges) {
  for (const char* verb : {"inspect", "search"}) {
    for (const char* classes :
         {"--num-classes=-3", "--num-classes=0", "--num-classes=1", "--num-classes=100001"}) {
      const CommandResult result =
          RunCommand({OCS_WORKER_BIN, "model", verb, "--arch", "resnet20", classes});
      EXPECT_EQ(result.exit_code, 2) << verb << " " << classes << "\n" << result.err;
      EXPECT_THAT(result.err, HasSubstr("--num-classes must be in [2, 100000]"));
    }
    for (const char* input : {"--input=-1,8,8", "--input=0,8,8", "--input=3,100000,100000"}) {
      const CommandResult result =
          RunCommand({OCS_WORKER_BIN, "model", verb, "--arch", "resnet20", input});
      EXPECT_EQ(result.exit_code, 2) << verb << " " << input << "\n" << result.err;
      EXPECT_THAT(result.err, HasSubstr("--input must be C,H,W with C in [1, 1024]"));
    }
  }
  const CommandResult two = RunCommand(
      {OCS_WORKER_BIN, "model", "inspect", "--arch", "resnet20", "--num-classes=2", "--json"});
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(nlohmann::json::parse(two.out)["numClasses"], 2);
}

}  // namespace
}  // namespace ocs::testing
