// Fault tests: a real coordinator and real workers on loopback, hurt at chosen points. Whatever
// happens, the job ends Succeeded (or Failed with a precise reason), every boundary the
// coordinator acknowledged is stored exactly once, no artifact is half written, and no process
// hangs. Crash points (common/crash_point.h) place a SIGKILL exactly: after a report went out,
// right after the prune, between writing a checkpoint and renaming it, after a verdict was stored,
// after an artifact's file was written.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "tests/integration/cluster_test.h"
#include "tests/support/gloo.h"
#include "tests/support/tcp_proxy.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;
namespace crash_point = common::crash_point;

class FaultTest : public ClusterTest {
 protected:
  // Waits for a process armed with a crash point to die there; its log must say so.
  void ExpectCrashedAt(Subprocess& process, const std::string& log, const std::string& point) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (process.running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_FALSE(process.running()) << point << " was never reached\n" << Logs();
    EXPECT_THAT(ReadFile(log), ::testing::HasSubstr("crash point " + point)) << Logs();
  }

  // The job ends well, its boundaries intact, its model served as rank 0 exported it.
  ocs::v1::Job ExpectSucceededWithNothingLost(const std::string& id) {
    const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
    EXPECT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
    ExpectEveryBoundaryOnceWithOnePrune(id, 8);
    EXPECT_EQ(Download(id, "model.pt"), ReadFile(dir() + "/shared/" + id + "/model.pt"));
    EXPECT_EQ(Download(id, "report.json"), ReadFile(dir() + "/shared/" + id + "/report.json"));
    return job;
  }
};

// A worker dies (SIGKILL) at a chosen point of its epoch; a replacement joins; the job restarts
// from its newest checkpoint.
struct WorkerCrash {
  const char* point;
  int pass;
  // Only rank 0 writes checkpoints: arm both workers, whichever holds rank 0 dies. (A pass late
  // enough that the survivor, rank 0 after the restart, does not reach it again.)
  bool arm_both;
};

void PrintTo(const WorkerCrash& crash, std::ostream* out) {
  *out << crash.point << "@" << crash.pass << (crash.arm_both ? " on both workers" : "");
}

class WorkerCrashTest : public FaultTest, public ::testing::WithParamInterface<WorkerCrash> {};

TEST_P(WorkerCrashTest, TheJobRestartsFromItsCheckpointWithEveryBoundaryOnce) {
  OCS_SKIP_WITHOUT_GLOO();
  const WorkerCrash crash = GetParam();
  WorkerOptions armed;
  armed.environment = {absl::StrCat("OCS_CRASH_AT=", crash.point, "@", crash.pass)};
  if (crash.arm_both) {
    StartWorker(armed);
  } else {
    StartWorker(1, /*shared=*/true);
  }
  StartWorker(armed);
  const std::string id = Submit(RestartableJobYaml("crash"));
  // Whichever armed worker reaches the point first dies there.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (cluster_->worker(0).running() && cluster_->worker(1).running() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int dead = cluster_->worker(0).running() ? 1 : 0;
  ExpectCrashedAt(cluster_->worker(dead), absl::StrCat(dir(), "/worker", dead, ".log"),
                  crash.point);
  StartWorker(1, /*shared=*/true);  // a replacement joins the fleet
  const ocs::v1::Job job = ExpectSucceededWithNothingLost(id);
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(cluster_->CoordinatorLog(0), ::testing::HasSubstr("resumed at epoch"));
}

INSTANTIATE_TEST_SUITE_P(Points, WorkerCrashTest,
                         ::testing::Values(WorkerCrash{crash_point::kReportSent, 3, false},
                                           WorkerCrash{crash_point::kPruned, 1, false},
                                           WorkerCrash{crash_point::kCheckpointWritten, 6, true}),
                         [](const ::testing::TestParamInfo<WorkerCrash>& info) {
                           std::string name = info.param.point;
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

// The coordinator dies (SIGKILL) at a chosen point and is started again on the same store: the
// ranks re-attach, nothing is decided twice, and the job goes on without a restart.
class CoordinatorCrashTest : public FaultTest,
                             public ::testing::WithParamInterface<std::pair<const char*, int>> {};

TEST_P(CoordinatorCrashTest, TheRanksReattachAndTheJobSucceedsWithoutARestart) {
  OCS_SKIP_WITHOUT_GLOO();
  const auto [point, pass] = GetParam();
  cluster_->KillCoordinator();
  StartCoordinator({}, {absl::StrCat("OCS_CRASH_AT=", point, "@", pass)});
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("coordinator-crash"));
  ExpectCrashedAt(cluster_->coordinator(), dir() + "/coordinator1.log", point);
  StartCoordinator();
  const ocs::v1::Job job = ExpectSucceededWithNothingLost(id);
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_THAT(cluster_->CoordinatorLog(2), ::testing::HasSubstr("re-attached"));
}

INSTANTIATE_TEST_SUITE_P(Points, CoordinatorCrashTest,
                         ::testing::Values(std::make_pair(crash_point::kBoundaryStored, 4),
                                           std::make_pair(crash_point::kArtifactWritten, 1)),
                         [](const auto& info) {
                           std::string name = info.param.first;
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

// The link between one worker and the coordinator fails for a while: every connection through it
// is closed and new ones are refused. The worker's ranks train on (their peers are reached
// directly), wait at the boundary, and re-attach when the link is back.
TEST_F(FaultTest, ACutLinkToTheCoordinatorHealsWithEveryBoundaryOnce) {
  OCS_SKIP_WITHOUT_GLOO();
  const int port = std::stoi(cluster_->address().substr(cluster_->address().find(':') + 1));
  absl::StatusOr<std::unique_ptr<TcpProxy>> link = TcpProxy::Start(port);
  ASSERT_TRUE(link.ok()) << link.status();
  WorkerOptions through_link;
  through_link.coordinator = (*link)->address();
  StartWorker(1, /*shared=*/true);
  StartWorker(through_link);
  const std::string id = Submit(RestartableJobYaml("cut"));
  ASSERT_TRUE(cluster_->WaitForBoundaries(id, 3)) << Logs();
  (*link)->Cut();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  (*link)->Restore();
  const ocs::v1::Job job = ExpectSucceededWithNothingLost(id);
  EXPECT_GT((*link)->refused(), 0) << "the worker never tried to come back during the cut";
  EXPECT_GT((*link)->relayed(), 1) << "the worker never came back through the link";
  EXPECT_THAT(cluster_->WorkerLog(1), ::testing::HasSubstr("claiming 1 running rank(s)"));
  EXPECT_EQ(job.restarts(), 0) << Logs();
  // The registration the worker had before the cut runs out its lease (30 s) as one it replaced
  // when it registered again: no worker was lost.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
  while (cluster_->CoordinatorLog(0).find("registered again since") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_THAT(cluster_->CoordinatorLog(0),
              ::testing::HasSubstr("(registered again since) is dropped"));
  EXPECT_THAT(cluster_->CoordinatorMetrics(), ::testing::HasSubstr("\nocs_workers_lost_total 0\n"));
}

// The coordinator's artifact folder lives on its own small filesystem (tmpfs, which needs root):
// the final upload meets a full disk.
class FullDiskTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    artifacts_ = dir() + "/coordinator/artifacts";
    fs::create_directories(artifacts_);
    if (mount("tmpfs", artifacts_.c_str(), "tmpfs", 0, "size=64k") != 0) {
      GTEST_SKIP() << "cannot mount a small tmpfs (" << std::strerror(errno) << "): needs root";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) umount2(artifacts_.c_str(), MNT_DETACH);
  }
  void Resize(const std::string& size) {
    ASSERT_EQ(mount("tmpfs", artifacts_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()), 0)
        << std::strerror(errno);
  }
  // No temporary upload is left behind, whatever happened.
  void ExpectNoHalfWrittenFiles() {
    for (const auto& entry : fs::recursive_directory_iterator(artifacts_)) {
      EXPECT_NE(entry.path().filename().string()[0], '.') << entry.path();
    }
  }
  std::string artifacts_;
  bool mounted_ = false;
};

TEST_F(FullDiskTest, AFullArtifactDiskIsWaitedOutAndTheJobSucceeds) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("full-disk"));
  // Rank 0 says it is waiting for space; then the operator grows the disk.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (Logs().find("artifact disk is full") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_THAT(Logs(), ::testing::HasSubstr("No space left on device"));
  ExpectNoHalfWrittenFiles();
  EXPECT_EQ(Get(id).state(), ocs::v1::JOB_STATE_PRUNED);  // still running, nothing lost
  Resize("64m");
  const ocs::v1::Job job = ExpectSucceededWithNothingLost(id);
  EXPECT_EQ(job.restarts(), 0);
  ExpectNoHalfWrittenFiles();
}

TEST_F(FullDiskTest, AnArtifactDiskThatStaysFullFailsTheJobNamingTheDiskAndTheFile) {
  OCS_SKIP_WITHOUT_GLOO();
  WorkerOptions impatient;
  impatient.extra_flags = {"--upload-retry-seconds", "3"};
  StartWorker(impatient);
  StartWorker(impatient);
  const std::string id = Submit(RestartableJobYaml("stays-full"));
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_FAILED) << job.message() << "\n" << Logs();
  EXPECT_THAT(job.message(),
              ::testing::ContainsRegex("uploading model.pt: the coordinator's artifact disk is "
                                       "full: .*No space left on device; gave up after 3 s, the "
                                       "file stays at .*/model.pt"));
  EXPECT_EQ(job.restarts(), 0);  // training again would not make room
  EXPECT_EQ(job.artifacts_size(), 0);
  ExpectNoHalfWrittenFiles();
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
  EXPECT_TRUE(fs::exists(dir() + "/shared/" + id + "/model.pt"));
  // The coordinator serves on.
  EXPECT_TRUE(cluster_->Get(id).ok());
}

// Fault: a worker that stalls (SIGSTOP) instead of dying. Its heartbeats stop, the coordinator
// declares it lost after the lease and restarts the job elsewhere; woken up again, the worker
// joins again and the coordinator cancels the rank it still claims.
TEST_F(FaultTest, AStalledWorkerIsDeclaredLostAndItsJobRestartsElsewhere) {
  OCS_SKIP_WITHOUT_GLOO();
  cluster_->KillCoordinator();
  StartCoordinator({"--worker-lease-seconds", "3"});
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("stalled"));
  ASSERT_TRUE(WaitForBoundaries(id, 3)) << Logs();
  cluster_->worker(1).Signal(SIGSTOP);
  StartWorker(1, /*shared=*/true);  // a replacement joins the fleet
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  cluster_->worker(1).Signal(SIGCONT);
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  EXPECT_EQ(job.restarts(), 1);
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
  EXPECT_THAT(cluster_->CoordinatorLog(1), ::testing::HasSubstr("missed its heartbeats"));
  // Awake again: it joins anew, claims its stale rank and is told to stop it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto told = [this] {
    const std::string log = cluster_->CoordinatorLog(1);
    // Stopped either way: the job still runs as attempt 1, or has ended meanwhile.
    return log.find("attempt 0 was stopped") != std::string::npos ||
           log.find("does not run any more: rank") != std::string::npos;
  };
  while (!told() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(told()) << Logs();
  EXPECT_TRUE(cluster_->worker(1).running());
}

// Fault: the newest checkpoint is damaged when a lost worker's job restarts. The restart resumes
// from the one before, and the decisions after it are made again, once.
TEST_F(FaultTest, ADamagedNewestCheckpointResumesFromThePreviousOne) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("damaged"));
  ASSERT_TRUE(WaitForBoundaries(id, 4)) << Logs();
  cluster_->worker(1).Signal(SIGKILL);
  // Requeued, waiting for a second slot: nothing writes checkpoints now.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Get(id).state() != ocs::v1::JOB_STATE_PENDING &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<fs::path> checkpoints;
  for (const auto& entry : fs::directory_iterator(dir() + "/shared/" + id)) {
    if (entry.path().filename().string().rfind("checkpoint-epoch-", 0) == 0) {
      checkpoints.push_back(entry.path());
    }
  }
  ASSERT_GE(checkpoints.size(), 2u) << Logs();
  std::sort(checkpoints.begin(), checkpoints.end());
  const fs::path newest = checkpoints.back();
  {
    std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(newest) / 2));
    file << "damaged by the test";  // inside the weights: only the checksum notices
  }
  StartWorker(1, /*shared=*/true);
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(Logs(), ::testing::HasSubstr("skipping " + newest.string() + ": damaged checkpoint"));
  // checkpoint-epoch-NNNNN.pt holds the state before epoch NNNNN: resume from the one before.
  const std::string previous = checkpoints[checkpoints.size() - 2].filename().string();
  const int resume_epoch = std::stoi(previous.substr(previous.find_last_of('-') + 1));
  EXPECT_THAT(cluster_->CoordinatorLog(0),
              ::testing::HasSubstr(absl::StrCat("resumed at epoch ", resume_epoch)));
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
}

}  // namespace
}  // namespace ocs::testing
