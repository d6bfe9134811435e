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
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/mask.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "ocs/v1/worker_service.grpc.pb.h"
#include "tests/support/gloo.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;

std::string Job(const std::string& name, int workers) {
  return absl::StrCat("apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: ", name,
                      "}\nspec:\n"
                      "  model: {arch: resnet20, numClasses: 4, inputShape: [3, 12, 12]}\n"
                      "  data: {dataset: synthetic, trainLimit: 256, testLimit: 64}\n"
                      "  training: {epochs: 4, batchSize: 32}\n"
                      "  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, "
                      "sparsityEndEpoch: 2}\n"
                      "  resources: {workers: ",
                      workers, ", device: cpu}\n  checkpoint: {everyEpochs: 0}\n");
}

class ServiceModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/service-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
                        getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    address_ = absl::StrCat("127.0.0.1:", PickFreePort());
    rendezvous_port_ = PickFreePort();
    StartCoordinator();
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), arguments);
    ASSERT_TRUE(
        channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)));
    jobs_ = ocs::v1::JobService::NewStub(channel_);
  }

  // A coordinator on address_ with its store in dir_/coordinator; each start logs to its own file.
  void StartCoordinator(const std::vector<std::string>& extra_flags = {}) {
    std::vector<std::string> command{OCS_COORDINATOR_BIN,
                                     "--listen",
                                     address_,
                                     "--data-dir",
                                     dir_ + "/coordinator",
                                     "--rendezvous-port-base",
                                     std::to_string(rendezvous_port_),
                                     "--metrics-listen",
                                     kAnyPort};
    command.insert(command.end(), extra_flags.begin(), extra_flags.end());
    coordinator_ = std::make_unique<Subprocess>(
        command, absl::StrCat(dir_, "/coordinator", coordinator_starts_++, ".log"));
  }

  // `shared`: the work folder all workers mount in a deployment (checkpoints survive a worker).
  void StartWorker(int slots, bool shared = false) {
    const int n = static_cast<int>(workers_.size());
    const std::string work_dir = shared ? dir_ + "/shared" : absl::StrCat(dir_, "/worker", n);
    workers_.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{OCS_WORKER_BIN, "serve", "--coordinator", address_, "--slots",
                                 std::to_string(slots), "--threads", "1", "--work-dir", work_dir,
                                 "--metrics-listen", kAnyPort},
        absl::StrCat(dir_, "/worker", n, ".log")));
  }

  // Eight epochs with a checkpoint after each: long enough to be interrupted mid-run.
  static std::string RestartableJob(const std::string& name) {
    std::string yaml = Job(name, 2);
    yaml.replace(yaml.find("epochs: 4"), 9, "epochs: 8");
    yaml.replace(yaml.find("sparsityEndEpoch: 2"), 19, "sparsityEndEpoch: 6");
    yaml.replace(yaml.find("everyEpochs: 0"), 14, "everyEpochs: 1");
    return yaml;
  }

  // The stored series has every boundary once, in order, none missing, and exactly one prune.
  void ExpectEveryBoundaryOnceWithOnePrune(const std::string& id, int epochs) {
    const ocs::v1::GetStabilityResponse stability = Stability(id);
    ASSERT_EQ(stability.boundaries_size(), epochs) << Logs();
    int prunes = 0;
    for (int e = 0; e < epochs; ++e) {
      EXPECT_EQ(stability.boundaries(e).epoch(), e);
      prunes += stability.boundaries(e).prune();
    }
    EXPECT_EQ(prunes, 1);
  }

  // Waits until the coordinator has stored `count` boundaries of the job.
  bool WaitForBoundaries(const std::string& id, int count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (Stability(id).boundaries_size() < count) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return true;
  }

  std::string Submit(const std::string& yaml) {
    ocs::v1::SubmitJobRequest request;
    request.set_spec_yaml(yaml);
    ocs::v1::SubmitJobResponse response;
    grpc::Status status;
    // After a coordinator restart the first call can meet the closed connection: try again.
    for (int attempt = 0; attempt < 50; ++attempt) {
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      status = jobs_->SubmitJob(&context, request, &response);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.job().id();
  }

  ocs::v1::Job Get(const std::string& id) {
    ocs::v1::GetJobRequest request;
    request.set_id(id);
    ocs::v1::Job job;
    grpc::Status status;
    // Across a coordinator restart a call can meet the closing connection: try again.
    for (int attempt = 0; attempt < 50; ++attempt) {
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      status = jobs_->GetJob(&context, request, &job);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  // Polls until the job leaves pending/running or `timeout` passes.
  ocs::v1::Job WaitForEnd(const std::string& id, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    ocs::v1::Job job = Get(id);
    while (!Terminal(job.state()) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      job = Get(id);
    }
    return job;
  }

  ocs::v1::GetStabilityResponse Stability(const std::string& id) {
    ocs::v1::GetStabilityRequest request;
    request.set_id(id);
    ocs::v1::GetStabilityResponse response;
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    EXPECT_TRUE(jobs_->GetStability(&context, request, &response).ok());
    return response;
  }

  // The artifact's bytes, through the streaming download.
  std::string Download(const std::string& id, const std::string& name) {
    ocs::v1::DownloadArtifactRequest request;
    request.set_id(id);
    request.set_name(name);
    grpc::ClientContext context;
    auto reader = jobs_->DownloadArtifact(&context, request);
    std::string bytes;
    ocs::v1::ArtifactData data;
    while (reader->Read(&data)) bytes += data.data();
    const grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return bytes;
  }

  static bool Terminal(ocs::v1::JobState state) {
    return state == ocs::v1::JOB_STATE_SUCCEEDED || state == ocs::v1::JOB_STATE_FAILED ||
           state == ocs::v1::JOB_STATE_CANCELLED;
  }

  std::string Logs() {
    std::string logs;
    for (int n = 0; n < coordinator_starts_; ++n) {
      logs += ReadFile(absl::StrCat(dir_, "/coordinator", n, ".log"));
    }
    for (size_t n = 0; n < workers_.size(); ++n) {
      logs += ReadFile(absl::StrCat(dir_, "/worker", n, ".log"));
    }
    return logs;
  }

  std::string dir_, address_;
  int rendezvous_port_ = 0;
  int coordinator_starts_ = 0;
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ocs::v1::JobService::Stub> jobs_;
};

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
    auto reader = jobs_->WatchJob(&context, request);
    ocs::v1::JobEvent event;
    while (reader->Read(&event)) events.push_back(event);
    watched = reader->Finish();
  });
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  watcher.join();
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  // Rank 0 ran on one of the two workers and exported there.
  std::string report_path = dir_ + "/worker0/" + id + "/report.json";
  if (!fs::exists(report_path)) report_path = dir_ + "/worker1/" + id + "/report.json";
  ASSERT_TRUE(fs::exists(report_path)) << Logs();
  EXPECT_THAT(ReadFile(dir_ + "/coordinator0.log"), ::testing::HasSubstr("2 ranks"));
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
  ASSERT_TRUE(jobs_->GetMasks(&context, request, &masks).ok());
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
    auto reader = jobs_->DownloadArtifact(&context, request);
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
  workers_[1]->Signal(SIGKILL);
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(60));
  EXPECT_EQ(job.state(), ocs::v1::JOB_STATE_FAILED) << Logs();
  EXPECT_THAT(job.message(),
              ::testing::MatchesRegex("worker worker-.* was lost after 0 restart.*maxRestarts.*"));
}

TEST_F(ServiceModeTest, AKilledWorkersJobRestartsFromItsCheckpointAndSucceeds) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJob("restarts"));
  ASSERT_TRUE(WaitForBoundaries(id, 4)) << Logs();
  workers_[1]->Signal(SIGKILL);
  StartWorker(1, /*shared=*/true);  // a replacement joins the fleet
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_THAT(ReadFile(dir_ + "/coordinator0.log"), ::testing::HasSubstr("resumed at epoch"));
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
  // The history tells the story: back to pending once, because of the lost worker.
  int requeues = 0;
  for (const ocs::v1::JobTransition& t : job.history()) {
    if (t.to() != ocs::v1::JOB_STATE_PENDING || t.from() == ocs::v1::JOB_STATE_UNSPECIFIED) {
      continue;
    }
    ++requeues;
    EXPECT_THAT(t.reason(), ::testing::HasSubstr("was lost; restart 1 of 3"));
  }
  EXPECT_EQ(requeues, 1);
  EXPECT_TRUE(fs::exists(dir_ + "/shared/" + id + "/report.json"));
}

TEST_F(ServiceModeTest, AKilledCoordinatorRestartsAndItsRunningRanksReattachWithEveryEpochOnce) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJob("survives"));
  ASSERT_TRUE(WaitForBoundaries(id, 4)) << Logs();
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  StartCoordinator();  // same address, same store; the workers join again by themselves
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  // The ranks never stopped: no restart, no checkpoint loaded, the same worker processes.
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_THAT(ReadFile(dir_ + "/coordinator1.log"),
              ::testing::HasSubstr("re-attached: all 2 ranks are back"));
  for (int n = 0; n < 2; ++n) {
    const std::string log = ReadFile(absl::StrCat(dir_, "/worker", n, ".log"));
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
  const std::string id = Submit(RestartableJob("outage"));
  ASSERT_TRUE(WaitForBoundaries(id, 3)) << Logs();
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  workers_[1]->Signal(SIGKILL);  // dies while nobody watches
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
  EXPECT_THAT(ReadFile(dir_ + "/coordinator1.log"), ::testing::HasSubstr("resumed at epoch"));
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
}

// Fault: a worker that stalls (SIGSTOP) instead of dying. Its heartbeats stop, the coordinator
// declares it lost after the lease and restarts the job elsewhere; woken up again, the worker
// joins again and the coordinator cancels the rank it still claims.
TEST_F(ServiceModeTest, AStalledWorkerIsDeclaredLostAndItsJobRestartsElsewhere) {
  OCS_SKIP_WITHOUT_GLOO();
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  StartCoordinator({"--worker-lease-seconds", "3"});
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJob("stalled"));
  ASSERT_TRUE(WaitForBoundaries(id, 3)) << Logs();
  workers_[1]->Signal(SIGSTOP);
  StartWorker(1, /*shared=*/true);  // a replacement joins the fleet
  const ocs::v1::Job job = WaitForEnd(id, std::chrono::seconds(240));
  workers_[1]->Signal(SIGCONT);
  ASSERT_EQ(job.state(), ocs::v1::JOB_STATE_SUCCEEDED) << job.message() << "\n" << Logs();
  EXPECT_EQ(job.restarts(), 1);
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
  EXPECT_THAT(ReadFile(dir_ + "/coordinator1.log"), ::testing::HasSubstr("missed its heartbeats"));
  // Awake again: it joins anew, claims its stale rank and is told to stop it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto told = [this] {
    const std::string log = ReadFile(dir_ + "/coordinator1.log");
    // Stopped either way: the job still runs as attempt 1, or has ended meanwhile.
    return log.find("attempt 0 was stopped") != std::string::npos ||
           log.find("does not run any more: rank") != std::string::npos;
  };
  while (!told() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(told()) << Logs();
  EXPECT_TRUE(workers_[1]->running());
}

// Fault: the newest checkpoint is damaged when a lost worker's job restarts. The restart resumes
// from the one before, and the decisions after it are made again, once.
TEST_F(ServiceModeTest, ADamagedNewestCheckpointResumesFromThePreviousOne) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(1, /*shared=*/true);
  StartWorker(1, /*shared=*/true);
  const std::string id = Submit(RestartableJob("damaged"));
  ASSERT_TRUE(WaitForBoundaries(id, 4)) << Logs();
  workers_[1]->Signal(SIGKILL);
  // Requeued, waiting for a second slot: nothing writes checkpoints now.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Get(id).state() != ocs::v1::JOB_STATE_PENDING &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<fs::path> checkpoints;
  for (const auto& entry : fs::directory_iterator(dir_ + "/shared/" + id)) {
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
  EXPECT_THAT(ReadFile(dir_ + "/coordinator0.log"),
              ::testing::HasSubstr(absl::StrCat("resumed at epoch ", resume_epoch)));
  ExpectEveryBoundaryOnceWithOnePrune(id, 8);
}

TEST_F(ServiceModeTest, OcsctlSubmitFollowsTheJobToItsEnd) {
  OCS_SKIP_WITHOUT_GLOO();
  StartWorker(2);
  const std::string file = dir_ + "/job.yaml";
  std::ofstream(file) << Job("submitted", 2);
  const CommandResult result =
      RunCommand({OCSCTL_BIN, "submit", file, "--coordinator", address_, "--follow"},
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
