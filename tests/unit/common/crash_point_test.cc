// Crash points die exactly where and when OCS_CRASH_AT says, by SIGKILL, and nowhere else.
#include "common/crash_point.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

namespace ocs::common {
namespace {

class CrashPointTest : public ::testing::Test {
 protected:
  // Each death test re-executes the binary: the variable is read fresh in the child.
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(CrashPointTest, UnarmedPointsPassQuietly) {
  unsetenv("OCS_CRASH_AT");
  CrashPoint(crash_point::kReportSent);
  CrashPoint(crash_point::kBoundaryStored);
  SUCCEED();
}

TEST_F(CrashPointTest, DiesOnTheCountedPassOfTheNamedPoint) {
  EXPECT_EXIT(
      {
        setenv("OCS_CRASH_AT", "worker-pruned@3", 1);
        CrashPoint(crash_point::kPruned);
        CrashPoint(crash_point::kReportSent);  // another point does not count
        CrashPoint(crash_point::kPruned);
        (void)!write(STDERR_FILENO, "passed twice\n", 13);
        CrashPoint(crash_point::kPruned);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGKILL),
      "passed twice\ncrash point worker-pruned \\(pass 3\\): SIGKILL");
}

TEST_F(CrashPointTest, WithoutACountTheFirstPassDies) {
  EXPECT_EXIT(
      {
        setenv("OCS_CRASH_AT", "coordinator-boundary-stored", 1);
        CrashPoint(crash_point::kBoundaryStored);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "pass 1");
}

}  // namespace
}  // namespace ocs::common
