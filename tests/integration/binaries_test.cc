// Every binary answers --help and --version, and rejects unknown options with exit code 2.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

using ::testing::HasSubstr;

class BinariesTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BinariesTest, AnswersHelp) {
  const CommandResult result = RunCommand({GetParam(), "--help"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("Usage:"));
  EXPECT_THAT(result.out, HasSubstr("--version"));
}

TEST_P(BinariesTest, AnswersVersion) {
  const CommandResult result = RunCommand({GetParam(), "--version"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("0.1.0 (api ocs/v1)"));
}

TEST_P(BinariesTest, RejectsUnknownOptions) {
  const CommandResult result = RunCommand({GetParam(), "--no-such-option"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("Run with --help for more information."));
}

INSTANTIATE_TEST_SUITE_P(AllBinaries, BinariesTest,
                         ::testing::Values(OCS_COORDINATOR_BIN, OCS_WORKER_BIN, OCSCTL_BIN));

TEST(WorkerVersionTest, NamesTheLibTorchItRunsOn) {
  const CommandResult result = RunCommand({OCS_WORKER_BIN, "--version"});
  EXPECT_THAT(result.out, HasSubstr("LibTorch "));
  EXPECT_THAT(result.out, HasSubstr("CUDA available: "));
}

}  // namespace
}  // namespace ocs::testing
