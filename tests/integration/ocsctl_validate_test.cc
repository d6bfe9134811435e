// `ocsctl validate` as a user runs it: real files, real exit codes, real output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

using ::testing::HasSubstr;

std::string WriteTempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(OcsctlValidateTest, AcceptsTheExamples) {
  for (const char* example :
       {"examples/resnet56-cifar10.yaml", "examples/resnet20-fashion-mnist.yaml"}) {
    const CommandResult result = RunCommand({OCSCTL_BIN, "validate", example});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_THAT(result.out, HasSubstr("valid PruningJob"));
    EXPECT_EQ(result.err, "");  // no warnings: their stability indicator can decide
  }
}

TEST(OcsctlValidateTest, WarnsOfAStabilityWindowThatCannotDecideButStillAccepts) {
  const std::string path = WriteTempFile("long-window.yaml", R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: long-window}
spec:
  model: {arch: resnet20}
  data: {dataset: synthetic}
  training: {epochs: 40}
  stability: {sparsityStartEpoch: 10, sparsityEndEpoch: 20, window: 30}
)");
  CommandResult result = RunCommand({OCSCTL_BIN, "validate", path});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("valid PruningJob"));
  EXPECT_THAT(result.err,
              HasSubstr("warning: spec.stability.window: with history 3 and window 30"));
  EXPECT_THAT(result.err, HasSubstr("the prune is always forced at epoch 20"));

  result = RunCommand({OCSCTL_BIN, "validate", path, "-o", "json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("\"warnings\": ["));
}

TEST(OcsctlValidateTest, ListsEveryProblemAndExitsTwo) {
  const std::string path = WriteTempFile("invalid.yaml", R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: Bad_Name}
spec:
  model: {arch: resnet-56}
  data: {dataset: synthetic}
  pruning: {targetFlopsReduction: 1.5}
)");
  const CommandResult result = RunCommand({OCSCTL_BIN, "validate", path});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("3 problems"));
  EXPECT_THAT(result.err, HasSubstr("metadata.name: must be a DNS-1123 label"));
  EXPECT_THAT(result.err, HasSubstr("did you mean \"resnet56\"?"));
  EXPECT_THAT(result.err, HasSubstr("spec.pruning.targetFlopsReduction: must be in (0, 1), got "
                                    "1.5 (" +
                                    path + ":7:35)"));
}

TEST(OcsctlValidateTest, YamlOutputIsTheCanonicalSpec) {
  const CommandResult result =
      RunCommand({OCSCTL_BIN, "validate", "-o", "yaml", "examples/resnet20-fashion-mnist.yaml"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("path: /usr/share/datasets/fashion-mnist"));
  EXPECT_THAT(result.out, HasSubstr("layerPruneLimit: 0.75"));
  // The canonical form is itself a valid spec.
  const std::string path = WriteTempFile("canonical.yaml", result.out);
  EXPECT_EQ(RunCommand({OCSCTL_BIN, "validate", path}).exit_code, 0);
}

TEST(OcsctlValidateTest, JsonOutputHasStableFieldNames) {
  const std::string path = WriteTempFile("bad-epochs.yaml",
                                         "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: "
                                         "a}\nspec:\n  model: {arch: vgg16}\n  data: {dataset: "
                                         "synthetic}\n  training: {epochs: ten}\n");
  const CommandResult result = RunCommand({OCSCTL_BIN, "validate", "-o", "json", path});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.out, HasSubstr("\"valid\": false"));
  EXPECT_THAT(result.out, HasSubstr("\"field\": \"spec.training.epochs\""));
  EXPECT_THAT(result.out, HasSubstr("\"problem\": \"must be an integer, got ten\""));
  EXPECT_THAT(result.out, HasSubstr("\"line\": 7"));
  EXPECT_THAT(result.out, HasSubstr("\"column\": 22"));
}

TEST(OcsctlValidateTest, UnreadableFilesAndBadArgumentsExitTwo) {
  CommandResult result = RunCommand({OCSCTL_BIN, "validate", "/nonexistent.yaml"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("job spec /nonexistent.yaml: no such file"));
  result = RunCommand({OCSCTL_BIN, "validate"});
  EXPECT_EQ(result.exit_code, 2);
  result = RunCommand({OCSCTL_BIN, "validate", "-o", "xml", "examples/resnet56-cifar10.yaml"});
  EXPECT_EQ(result.exit_code, 2);
  result = RunCommand({OCSCTL_BIN});
  EXPECT_EQ(result.exit_code, 2);
}

TEST(OcsctlValidateTest, BinaryJunkIsAnInvalidSpecNotACrash) {
  std::string junk;
  for (int i = 0; i < 2048; ++i) junk.push_back(static_cast<char>((i * 131 + 7) % 256));
  const CommandResult result = RunCommand({OCSCTL_BIN, "validate", WriteTempFile("junk", junk)});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("invalid job spec"));
}

TEST(OcsctlValidateTest, HelpDocumentsExitCodes) {
  const CommandResult result = RunCommand({OCSCTL_BIN, "--help"});
  EXPECT_THAT(result.out, HasSubstr("Exit codes: 0 success"));
}

}  // namespace
}  // namespace ocs::testing
