// Bad job specs at every door: ocsctl validate, the worker (model inspect --job) and a real
// coordinator's SubmitJob each reject every file of tests/corpus/bad_job_specs, plus generated
// ones (nesting far deeper than any spec, binary junk, a file past the size limit), with a clear
// message, never a crash, and the coordinator stores nothing.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "ocs/v1/worker_service.grpc.pb.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;

// The corpus files and the generated ones, by path.
std::vector<std::string> BadSpecs(const std::string& dir) {
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator("tests/corpus/bad_job_specs")) {
    paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  auto write = [&](const std::string& name, const std::string& content) {
    const std::string path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    paths.push_back(path);
  };
  const std::string head = "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: deep}\n";
  write("deep-flow-lists.yaml",
        head + "spec:\n  model: " + std::string(100000, '[') + std::string(100000, ']') + "\n");
  std::string nested_maps = head + "spec:\n";
  for (int depth = 1; depth <= 1200; ++depth) {  // ~720 KB: under the 1 MiB limit
    nested_maps += std::string(depth, ' ') + "k:\n";
  }
  write("deep-block-maps.yaml", nested_maps);
  write("past-the-size-limit.yaml", head + "# " + std::string(2 << 20, 'x') + "\n");
  std::mt19937 random(20261127);  // the same junk every run
  for (int i = 0; i < 16; ++i) {
    std::string junk(static_cast<size_t>(64 << (i % 8)), '\0');
    for (char& c : junk) c = static_cast<char>(random());
    write(absl::StrCat("junk-", i, ".yaml"), junk);
  }
  return paths;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/bad-input-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // A coordinator of the test's own, and a Job API stub to it.
  std::unique_ptr<ocs::v1::JobService::Stub> StartCoordinator() {
    const std::string address = absl::StrCat("127.0.0.1:", PickFreePort());
    coordinator_ = std::make_unique<Subprocess>(
        std::vector<std::string>{OCS_COORDINATOR_BIN, "--listen", address, "--data-dir",
                                 dir_ + "/coordinator", "--metrics-listen", kAnyPort},
        dir_ + "/coordinator.log");
    address_ = address;
    return ocs::v1::JobService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  std::string dir_, address_;
  std::unique_ptr<Subprocess> coordinator_;
};

TEST_F(BadInputTest, OcsctlValidateRejectsEachWithAMessage) {
  const std::vector<std::string> specs = BadSpecs(dir_);
  ASSERT_GE(specs.size(), 50u);
  for (const std::string& spec : specs) {
    const CommandResult result = RunCommand({OCSCTL_BIN, "validate", spec});
    EXPECT_EQ(result.exit_code, 2) << spec << "\n" << result.out << result.err;
    EXPECT_THAT(result.err, ::testing::HasSubstr("job spec")) << spec;
  }
}

TEST_F(BadInputTest, TheWorkerRejectsEachWithAMessage) {
  for (const std::string& spec : BadSpecs(dir_)) {
    const CommandResult result = RunCommand({OCS_WORKER_BIN, "model", "inspect", "--job", spec});
    EXPECT_EQ(result.exit_code, 2) << spec << "\n" << result.out << result.err;
    EXPECT_THAT(result.out + result.err, ::testing::HasSubstr("job spec")) << spec;
  }
}

TEST_F(BadInputTest, TheCoordinatorRejectsEachAndStoresNothing) {
  auto jobs = StartCoordinator();
  auto submit = [&](const std::string& yaml) {
    ocs::v1::SubmitJobRequest request;
    request.set_spec_yaml(yaml);
    ocs::v1::SubmitJobResponse response;
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return jobs->SubmitJob(&context, request, &response);
  };
  for (const std::string& spec : BadSpecs(dir_)) {
    std::ifstream file(spec, std::ios::binary);
    const std::string yaml((std::istreambuf_iterator<char>(file)), {});
    const grpc::Status status = submit(yaml);
    // protobuf strings are UTF-8: junk that is not fails gRPC's own parsing of the request
    // (INTERNAL) before any code of ours runs; everything else gets our every-problem message.
    if (status.error_code() == grpc::StatusCode::INTERNAL) continue;
    // A spec past the 1 MiB limit is refused by the call's size limit, naming it.
    if (yaml.size() > (1 << 20)) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << spec;
      EXPECT_THAT(status.error_message(), ::testing::HasSubstr("accepts at most")) << spec;
      continue;
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << spec << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr("job spec")) << spec;
  }
  // A request past the size limit never reaches our code.
  const grpc::Status huge = submit(std::string(5 << 20, '#'));
  EXPECT_EQ(huge.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << huge.error_message();
  // Nothing was stored, and the coordinator still serves.
  EXPECT_TRUE(coordinator_->running());
  ocs::v1::ListJobsResponse listed;
  grpc::ClientContext context;
  ASSERT_TRUE(jobs->ListJobs(&context, {}, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);
}

// Artifacts are served from the paths the store recorded for a job, never from names in the
// request: ids and names that try to climb out of the data folder find nothing.
TEST_F(BadInputTest, PathsInJobIdsAndArtifactNamesReachNoFile) {
  auto jobs = StartCoordinator();
  int attempts = 0;
  for (const std::string id : {"../../../../etc", "/etc/passwd", "..", "a/../../b", ""}) {
    for (const std::string name :
         {"../../../../etc/passwd", "/etc/passwd", "model.pt", "ocs.db", "../ocs.db"}) {
      ocs::v1::DownloadArtifactRequest request;
      request.set_id(id);
      request.set_name(name);
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      auto reader = jobs->DownloadArtifact(&context, request);
      ocs::v1::ArtifactData data;
      std::string bytes;
      while (reader->Read(&data)) bytes += data.data();
      const grpc::Status status = reader->Finish();
      EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << id << " " << name;
      EXPECT_TRUE(bytes.empty()) << id << " " << name;
      ++attempts;
    }
    ocs::v1::GetJobRequest get;
    get.set_id(id);
    ocs::v1::Job job;
    grpc::ClientContext context;
    EXPECT_EQ(jobs->GetJob(&context, get, &job).error_code(), grpc::StatusCode::NOT_FOUND) << id;
  }
  EXPECT_EQ(attempts, 25);
}

// Each RPC holds its request to what its largest legitimate one needs, far below the server's
// 4 MiB cap: a 64 KiB id or name, or a spec past its 1 MiB limit, is refused by name.
TEST_F(BadInputTest, EveryRpcRefusesARequestLargerThanItNeeds) {
  auto jobs = StartCoordinator();
  auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  auto workers = ocs::v1::WorkerService::NewStub(channel);
  const std::string big(64 << 10, 'x');
  std::map<std::string, grpc::Status> refused;
  auto call = [](auto&& rpc) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return rpc(&context);
  };
  {
    ocs::v1::ValidateJobRequest request;
    request.set_spec_yaml(std::string((1 << 20) + (32 << 10), '#'));
    ocs::v1::ValidateJobResponse response;
    refused["ValidateJob"] =
        call([&](auto* c) { return jobs->ValidateJob(c, request, &response); });
    ocs::v1::SubmitJobRequest submit;
    submit.set_spec_yaml(request.spec_yaml());
    ocs::v1::SubmitJobResponse submitted;
    refused["SubmitJob"] = call([&](auto* c) { return jobs->SubmitJob(c, submit, &submitted); });
  }
  ocs::v1::Job job;
  ocs::v1::GetJobRequest get;
  get.set_id(big);
  refused["GetJob"] = call([&](auto* c) { return jobs->GetJob(c, get, &job); });
  ocs::v1::CancelJobRequest cancel;
  cancel.set_id("x");
  cancel.set_reason(big);
  refused["CancelJob"] = call([&](auto* c) { return jobs->CancelJob(c, cancel, &job); });
  ocs::v1::ListJobsRequest list;
  list.set_page_token(big);
  ocs::v1::ListJobsResponse listed;
  refused["ListJobs"] = call([&](auto* c) { return jobs->ListJobs(c, list, &listed); });
  ocs::v1::GetStabilityRequest stability;
  stability.set_id(big);
  ocs::v1::GetStabilityResponse stable;
  refused["GetStability"] =
      call([&](auto* c) { return jobs->GetStability(c, stability, &stable); });
  ocs::v1::GetMasksRequest masks;
  masks.set_id(big);
  ocs::v1::GetMasksResponse masked;
  refused["GetMasks"] = call([&](auto* c) { return jobs->GetMasks(c, masks, &masked); });
  ocs::v1::WatchJobRequest watch;
  watch.set_id(big);
  refused["WatchJob"] = call([&](auto* c) {
    auto reader = jobs->WatchJob(c, watch);
    ocs::v1::JobEvent event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  });
  ocs::v1::DownloadArtifactRequest download;
  download.set_id("x");
  download.set_name(big);
  refused["DownloadArtifact"] = call([&](auto* c) {
    auto reader = jobs->DownloadArtifact(c, download);
    ocs::v1::ArtifactData data;
    while (reader->Read(&data)) {
    }
    return reader->Finish();
  });
  ocs::v1::RegisterWorkerRequest join;
  join.set_host(big);
  join.set_device(ocs::v1::DEVICE_TYPE_CPU);
  join.set_slots(1);
  ocs::v1::RegisterWorkerResponse joined;
  refused["RegisterWorker"] =
      call([&](auto* c) { return workers->RegisterWorker(c, join, &joined); });
  ocs::v1::HeartbeatRequest beat;
  beat.set_worker_id(big);
  ocs::v1::HeartbeatResponse beaten;
  refused["Heartbeat"] = call([&](auto* c) { return workers->Heartbeat(c, beat, &beaten); });
  ASSERT_EQ(refused.size(), 11u);
  for (const auto& [method, status] : refused) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << method << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), ::testing::MatchesRegex(".* is [0-9]+ bytes; this call "
                                                                "accepts at most [0-9]+"))
        << method;
  }
  EXPECT_TRUE(coordinator_->running());
}

}  // namespace
}  // namespace ocs::testing
