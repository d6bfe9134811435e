// Service mode end to end: a real coordinator and real `ocs-worker serve` processes on loopback.
// A submitted job is gang-scheduled onto the workers, every boundary's verdict comes from the
// coordinator, the job prunes and succeeds, and the export lands in rank 0's work dir.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/mask.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "ocs/v1/worker_service.grpc.pb.h"
#include "tests/integration/cluster_test.h"
#include "tests/support/gloo.h"
#include "tests/support/memory_limit.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;

class ServiceModeTest : public ClusterTest {};

std::string Job(const std::string& name, int workers) { return SmallJobYaml(name, workers); }

TEST_F(ServiceModeTest, TwoWorkersRunAJobToSuccessWithTheCoordinatorsVerdicts) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1);
  StartWorker(1);
  const std::string id = Submit(Job("two-workers", 2));
  // A watcher from the start sees the whole story and its stream ends with the job.
  std::vector<ocs::v1::JobEvent> events;
  grpc::Status watched;
  std::thread watcher([&] {
    ocs::v1::WatchJobRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(240));
    auto reader = cluster_->jobs().WatchJob(&context, request);
    ocs::v1::JobEvent event;
    while (reader->Read(&event)) events.push_back(event);
    watched = reader->Finish();
  });
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  watcher.join();
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  // Rank 0 ran on one of the two workers and exported there.
  std::string report_path = dir() + "/worker0/" + id + "/report.json";
  if (!fs::exists(report_path)) report_path = dir() + "/worker1/" + id + "/report.json";
  ASSERT_TRUE(fs::exists(report_path)) << Logs();
  EXPECT_THAT(cluster_->CoordinatorLog(0), ::testing::HasSubstr("2 ranks"));
  const nlohmann::json report = nlohmann::json::parse(ReadFile(report_path));

  // The coordinator stored every boundary once, in order, with one prune: the one the worker
  // applied. (Both ranks applied it: their weight digests agreed at every later boundary.)
  const ocs::v1::GetStabilityResponse stability = Stability(id);
  ASSERT_EQ(stability.boundaries_size(), 4);
  int prunes = 0;
  for (int e = 0; e < 4; ++e) {
    const ocs::v1::EpochBoundary& b = stability.boundaries(e);
    EXPECT_EQ(b.epoch(), e);
    if (b.prune()) {
      ++prunes;
      EXPECT_EQ(report["pruneEpoch"], e);
    }
    if (e > 0) {
      EXPECT_NEAR(b.test_accuracy(), report["epochs"][e - 1]["testAccuracy"], 1e-9);
    }
  }
  EXPECT_EQ(prunes, 1);
  // The mask the coordinator decided on is the one in the exported model.
  ocs::v1::GetMasksRequest request;
  request.set_id(id);
  request.set_epoch(report["pruneEpoch"].get<int>());
  ocs::v1::GetMasksResponse masks;
  grpc::ClientContext context;
  ASSERT_TRUE(cluster_->jobs().GetMasks(&context, request, &masks).ok());
  ASSERT_EQ(masks.masks_size(), 1);
  const common::Mask decided = *common::DecodeMask(masks.masks(0).mask());
  ASSERT_EQ(decided.groups.size(), report["mask"].size());
  for (size_t g = 0; g < decided.groups.size(); ++g) {
    EXPECT_EQ(decided.groups[g].kept, report["mask"][g]["kept"].get<std::vector<int>>()) << g;
  }
  // The watch stream: pending, running, the four boundaries in order, succeeded; then its end.
  EXPECT_TRUE(watched.ok()) << watched.error_message();
  std::vector<std::string> story;
  for (const ocs::v1::JobEvent& event : events) {
    if (event.has_transition()) story.push_back(ocs::v1::JobState_Name(event.transition().to()));
    if (event.has_boundary()) story.push_back(absl::StrCat("epoch ", event.boundary().epoch()));
  }
  // (The order of a phase change and a boundary in one millisecond is boundary first.)
  EXPECT_THAT(story, ::testing::IsSupersetOf({"JOB_STATE_PENDING", "JOB_STATE_SCHEDULED",
                                              "JOB_STATE_SPARSITY_LEARNING", "JOB_STATE_PRUNED",
                                              "JOB_STATE_SUCCEEDED"}));
  std::vector<std::string> boundaries;
  for (const std::string& s : story) {
    if (s.rfind("epoch", 0) == 0) boundaries.push_back(s);
  }
  EXPECT_THAT(boundaries, ::testing::ElementsAre("epoch 0", "epoch 1", "epoch 2", "epoch 3"));
  EXPECT_EQ(story.front(), "JOB_STATE_PENDING");
  EXPECT_EQ(story.back(), "JOB_STATE_SUCCEEDED");
  // The coordinator holds the artifacts and serves them as they were written.
  ASSERT_EQ(job.artifacts_size(), 2);
  EXPECT_EQ(job.artifacts(0).name(), "model.pt");
  EXPECT_EQ(job.artifacts(1).name(), "report.json");
  const std::string model_path = fs::path(report_path).parent_path() / "model.pt";
  EXPECT_EQ(job.artifacts(0).size_bytes(), static_cast<int64_t>(fs::file_size(model_path)));
  EXPECT_EQ(Download(id, "model.pt"), ReadFile(model_path));
  EXPECT_EQ(Download(id, "report.json"), ReadFile(report_path));
  {
    ocs::v1::DownloadArtifactRequest request;
    request.set_id(id);
    request.set_name("weights.bin");
    grpc::ClientContext context;
    auto reader = cluster_->jobs().DownloadArtifact(&context, request);
    ocs::v1::ArtifactData data;
    while (reader->Read(&data)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // And the job's history: submitted, scheduled, its phases, succeeded.
  std::vector<ocs::v1::JobState> states;
  for (const ocs::v1::JobTransition& t : job.history()) states.push_back(t.to());
  EXPECT_THAT(states,
              ::testing::ElementsAre(ocs::v1::JOB_STATE_PENDING, ocs::v1::JOB_STATE_SCHEDULED,
                                     ocs::v1::JOB_STATE_SPARSITY_LEARNING,
                                     ocs::v1::JOB_STATE_PRUNED, ocs::v1::JOB_STATE_SUCCEEDED));
}

TEST_F(ServiceModeTest, AJobWaitsForEnoughSlotsThenRunsBothRanksOnOneWorker) {
  OCS_SKIP_WITHOUT_GLOO();
  const std::string id = Submit(Job("waits", 2));
  StartWorker(1);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(Get(id).state(), ocs::v1::JOB_STATE_PENDING);  // one slot is not enough: gang
  StartWorker(2);
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  EXPECT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
}

TEST_F(ServiceModeTest, ALostWorkerWithNoRestartsLeftFailsItsJobNamingTheWorker) {
  cluster_->KillCoordinator();
  StartCoordinator({"--worker-lease-seconds", "3"});  // a lost worker's ranks wait 3 s, not 30
  StartWorker(1);
  StartWorker(1);
  std::string yaml = Job("lost", 2) + "  maxRestarts: 0\n";
  yaml.replace(yaml.find("epochs: 4"), 9, "epochs: 200");
  const std::string id = Submit(yaml);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Get(id).state() == ocs::v1::JOB_STATE_PENDING &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  cluster_->worker(1).Signal(SIGKILL);
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(60));
  EXPECT_EQ(job.state(), ocs::v1::JOB_STATE_FAILED) << Logs();
  // Its peer notices first (a collective fails), or the lost worker's lease runs out.
  EXPECT_THAT(job.message(),
              ::testing::MatchesRegex("(rank [01]: training stopped: .*|worker worker-.*'s session "
                                      "closed and rank\\(s\\) [01] did not re-attach in time) "
                                      "after 0 restart.*maxRestarts.*"))
      << Logs();
}

// Out of memory is the job's sizes, not a fault of the fleet: a restart would stop at the same
// place, so the job fails at once with the reason, and the worker carries on.
TEST_F(ServiceModeTest, AJobOutOfMemoryFailsAtOnceNamingTheBatchSize) {
  WorkerOptions limited;
  limited.memory_limit_bytes = kWorkerMemoryLimitBytes;
  StartWorker(limited);
  const std::string id = Submit(OutOfMemoryJobYaml(3));
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(120));
  EXPECT_EQ(job.state(), ocs::v1::JOB_STATE_FAILED) << Logs();
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_THAT(job.message(),
              ::testing::StartsWith("rank 0: training stopped: out of memory on device cpu at "
                                    "spec.training.batchSize 64 (a smaller batch needs less): "))
      << Logs();
  EXPECT_TRUE(cluster_->worker(0).running());
  // It takes the next job.
  const std::string next = Submit(Job("after-out-of-memory", 1));
  EXPECT_EQ(WaitForEnd(next, std::chrono::seconds(120)).state(), ocs::v1::JOB_STATE_SUCCEEDED)
      << Logs();
}

// Beside another rank, which shares the worker's memory, running out of it may not be the job's
// sizes: it says so, and the job restarts while it may.
TEST_F(ServiceModeTest, OutOfMemoryBesideAnotherRankRestartsSayingSo) {
  WorkerOptions limited;
  limited.slots = 2;
  limited.memory_limit_bytes = kWorkerMemoryLimitBytes;
  StartWorker(limited);
  std::string long_yaml = Job("beside", 1);
  long_yaml.replace(long_yaml.find("epochs: 4"), 9, "epochs: 400");
  const std::string beside = Submit(long_yaml);
  ASSERT_TRUE(WaitForBoundaries(beside, 1)) << Logs();
  const std::string id = Submit(OutOfMemoryJobYaml(1));
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(120));
  EXPECT_EQ(job.state(), ocs::v1::JOB_STATE_FAILED) << Logs();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(job.message(), ::testing::HasSubstr("out of memory on device cpu"));
  EXPECT_THAT(job.message(),
              ::testing::HasSubstr("(beside 1 other rank(s) sharing this worker's memory: may "
                                   "restart) after 1 restart(s)"))
      << Logs();
  EXPECT_FALSE(Terminal(Get(beside).state())) << Logs();  // the other job trains on
}

TEST_F(ServiceModeTest, AKilledWorkersJobRestartsFromItsCheckpointAndSucceeds) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("restarts"));
  ASSERT_TRUE(WaitForBoundaries(id, 4)) << Logs();
  cluster_->worker(1).Signal(SIGKILL);
  StartWorker(1, /*shared=*/true);  // a replacement joins the fleet
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(cluster_->CoordinatorLog(0), ::testing::HasSubstr("resumed at epoch"));
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
  // The history tells the story: back to pending once, because of the lost worker.
  int requeues = 0;
  for (const ocs::v1::JobTransition& t : job.history()) {
    if (t.to() != ocs::v1::JOB_STATE_PENDING || t.from() == ocs::v1::JOB_STATE_UNSPECIFIED) {
      continue;
    }
    ++requeues;
    // The peer's collective fails first, or the lost worker's lease runs out.
    EXPECT_THAT(t.reason(), ::testing::ContainsRegex("(rank [01]: training stopped: .*|did not "
                                                     "re-attach in time); restart 1 of 3"));
  }
  EXPECT_EQ(requeues, 1);
  EXPECT_TRUE(fs::exists(dir() + "/shared/" + id + "/report.json"));
}

// A worker stopped on purpose (SIGTERM: a rolling update, a scale-down) says goodbye: its job
// restarts at once from its checkpoint, the worker exits 0 once its rank stopped, and it is not
// counted as a lost worker.
TEST_F(ServiceModeTest, AWorkerStoppedWithSigtermLeavesAndItsJobRestartsAtOnce) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("leaves"));
  ASSERT_TRUE(WaitForBoundaries(id, 3)) << Logs();
  cluster_->worker(1).Signal(SIGTERM);
  EXPECT_EQ(cluster_->worker(1).Wait(std::chrono::seconds(20)), 0) << Logs();
  EXPECT_THAT(cluster_->WorkerLog(1), ::testing::HasSubstr("received SIGTERM: leaving the fleet"));
  EXPECT_THAT(cluster_->WorkerLog(1), ::testing::HasSubstr("left the fleet"));
  // The coordinator dropped it at once, and not as a loss: one worker is registered, and no
  // registration is left behind to run out its lease.
  const std::string metrics = cluster_->CoordinatorMetrics();
  int registered = 0;
  static const std::regex kWorkers(R"(\nocs_workers\{state="[a-z]+"\} (\d+))");
  for (std::sregex_iterator m(metrics.begin(), metrics.end(), kWorkers), end; m != end; ++m) {
    registered += std::stoi((*m)[1]);
  }
  EXPECT_EQ(registered, 1) << metrics;
  EXPECT_THAT(metrics, ::testing::HasSubstr("\nocs_workers_lost_total 0\n"));
  StartWorker(1, /*shared=*/true);  // its replacement
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  EXPECT_EQ(job.restarts(), 1);
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
  bool requeued_for_leaving = false;
  for (const ocs::v1::JobTransition& t : job.history()) {
    requeued_for_leaving |= t.to() == ocs::v1::JOB_STATE_PENDING &&
                            absl::StrContains(t.reason(), " left (stopped by SIGTERM); restart 1");
  }
  EXPECT_TRUE(requeued_for_leaving) << Logs();
}

// Stopped while its first registration still waits for a coordinator (up to 30 s): it exits at
// once.
TEST_F(ServiceModeTest, AWorkerStoppedBeforeItJoinsExitsAtOnce) {
  WorkerOptions nowhere;
  nowhere.coordinator = absl::StrCat("127.0.0.1:", PickFreePort());
  Subprocess& worker = cluster_->StartWorker(nowhere);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  worker.Signal(SIGTERM);
  EXPECT_EQ(worker.Wait(std::chrono::seconds(5)), 0) << cluster_->WorkerLog(0);
  EXPECT_THAT(cluster_->WorkerLog(0), ::testing::HasSubstr("left before joining the fleet"));
}

TEST_F(ServiceModeTest, AKilledCoordinatorRestartsAndItsRunningRanksReattachWithEveryEpochOnce) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("survives"));
  ASSERT_TRUE(WaitForBoundaries(id, 4)) << Logs();
  cluster_->KillCoordinator();
  StartCoordinator();  // same address, same store; the workers join again by themselves
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  // The ranks never stopped: no restart, no checkpoint loaded, the same worker processes.
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_THAT(cluster_->CoordinatorLog(1),
              ::testing::HasSubstr("re-attached: all 2 ranks are back"));
  for (int n = 0; n < 2; ++n) {
    const std::string log = cluster_->WorkerLog(n);
    EXPECT_THAT(log, ::testing::HasSubstr("claiming 1 running rank(s)"));
    EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("resuming")));
  }
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
  EXPECT_FALSE(Download(id, "model.pt").empty());
}

TEST_F(ServiceModeTest, RanksThatDoNotReattachAfterACoordinatorRestartRestartTheJob) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJobYaml("outage"));
  ASSERT_TRUE(WaitForBoundaries(id, 3)) << Logs();
  cluster_->KillCoordinator();
  cluster_->worker(1).Signal(SIGKILL);  // dies while nobody watches
  StartCoordinator({"--reattach-seconds", "3"});
  StartWorker(1, /*shared=*/true);  // a replacement, with nothing to claim
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  EXPECT_EQ(job.restarts(), 1);
  // Requeued by whichever comes first: the grace running out for the dead rank, or the surviving
  // rank reporting that its peer is gone (a retryable failure, not the job's fault).
  int requeues = 0;
  for (const ocs::v1::JobTransition& t : job.history()) {
    if (t.to() != ocs::v1::JOB_STATE_PENDING || t.from() == ocs::v1::JOB_STATE_UNSPECIFIED) {
      continue;
    }
    ++requeues;
    EXPECT_THAT(t.reason(), ::testing::ContainsRegex("(did not re-attach in time|rank [01]: "
                                                     "training stopped: .*); restart 1 of 3"));
  }
  EXPECT_EQ(requeues, 1) << Logs();
  EXPECT_THAT(cluster_->CoordinatorLog(1), ::testing::HasSubstr("resumed at epoch"));
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
}

TEST_F(ServiceModeTest, OcsctlSubmitFollowsTheJobToItsEnd) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(2);
  const std::string file = dir() + "/job.yaml";
  std::ofstream(file) << Job("submitted", 2);
  const CommandResult result =
      RunCommand({OCSCTL_BIN, "submit", file, "--coordinator", cluster_->address(), "--follow"},
                 std::chrono::seconds(240));
  EXPECT_EQ(result.exit_code, 0) << result.err << Logs();
  EXPECT_THAT(result.out, ::testing::MatchesRegex("submitted-[a-z0-9]{5}\n(.|\n)*: succeeded\n"));
}

TEST(OcsctlSubmitTest, InvalidSpecsAndUnreachableCoordinators) {
  const std::string file = ::testing::TempDir() + "/bad-submit.yaml";
  std::ofstream(file) << "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: x}\nspec: {}\n";
  CommandResult result = RunCommand({OCSCTL_BIN, "submit", file, "--coordinator", "127.0.0.1:1"});
  EXPECT_EQ(result.exit_code, 2);  // validated locally: no server needed
  EXPECT_THAT(result.err, ::testing::HasSubstr("spec.model: is required"));
  result = RunCommand({OCSCTL_BIN, "submit", "examples/resnet56-cifar10.yaml", "--coordinator",
                       absl::StrCat("127.0.0.1:", PickFreePort())},
                      std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, ::testing::HasSubstr("cannot reach the coordinator at 127.0.0.1:"));
}

}  // namespace
}  // namespace ocs::testing
