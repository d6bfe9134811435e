// A real ocs-coordinator process on loopback: the job API (validation with the local parser's
// problems, submit/get/list/cancel, persistence across a SIGKILL), the worker API (sessions,
// artifact uploads stored whole or not at all), and a clean shutdown on SIGTERM.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>
#include <filesystem>

#include <functional>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "ocs/v1/worker_service.grpc.pb.h"
#include "proto/artifact_checksum.h"
#include "tests/support/http.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

// A registration of a CPU worker on this host.
ocs::v1::RegisterWorkerRequest CpuWorker(int slots) {
  ocs::v1::RegisterWorkerRequest request;
  request.set_host("127.0.0.1");
  request.set_device(ocs::v1::DEVICE_TYPE_CPU);
  request.set_slots(slots);
  request.set_version("0.1.0");
  return request;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = absl::StrCat("127.0.0.1:", PickFreePort());
    metrics_port_ = PickFreePort();
    // Tests run in parallel processes that share TempDir(): one log file each.
    log_path_ = absl::StrCat(::testing::TempDir(), "/coordinator-",
                             ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
                             getpid(), ".log");
    coordinator_ = std::make_unique<Subprocess>(
        std::vector<std::string>{OCS_COORDINATOR_BIN, "--listen", address_, "--data-dir", DataDir(),
                                 "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port_),
                                 "--worker-lease-seconds", std::to_string(lease_seconds_)},
        log_path_);
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    ASSERT_TRUE(
        channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)))
        << ReadFile(log_path_);
    stub_ = ocs::v1::JobService::NewStub(channel_);
  }

  std::string DataDir() const {
    return absl::StrCat(::testing::TempDir(), "/coordinator-data-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
                        getpid());
  }

  std::string address_, log_path_;
  int metrics_port_ = 0;
  int lease_seconds_ = 30;  // a test may shorten it before SetUp
  std::unique_ptr<Subprocess> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ocs::v1::JobService::Stub> stub_;
};

TEST_F(CoordinatorTest, ValidatesLikeTheLocalParser) {
  const std::string yaml =
      "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: x}\nspec:\n  model: {arch: vgg}\n"
      "  data: {dataset: cifar10}\n  stability: {threshold: 2}\n";
  ocs::v1::ValidateJobRequest request;
  request.set_spec_yaml(yaml);
  request.set_source("job.yaml");
  ocs::v1::ValidateJobResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ValidateJob(&context, request, &response).ok());
  EXPECT_FALSE(response.valid());

  std::vector<common::SpecError> local;
  EXPECT_FALSE(common::ParseJobSpec(yaml, "job.yaml", &local).ok());
  ASSERT_EQ(response.errors_size(), static_cast<int>(local.size()));
  for (int i = 0; i < response.errors_size(); ++i) {
    EXPECT_EQ(response.errors(i).field(), local[i].field);
    EXPECT_EQ(response.errors(i).problem(), local[i].problem);
    EXPECT_EQ(response.errors(i).line(), local[i].line);
    EXPECT_EQ(response.errors(i).column(), local[i].column);
  }
}

TEST_F(CoordinatorTest, ReturnsTheCanonicalSpecOfAValidJob) {
  ocs::v1::ValidateJobRequest request;
  request.set_spec_yaml(ReadFile("examples/resnet56-cifar10.yaml"));
  ocs::v1::ValidateJobResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ValidateJob(&context, request, &response).ok());
  EXPECT_TRUE(response.valid());
  EXPECT_EQ(response.job_name(), "resnet56-cifar10");
  auto spec = common::ParseJobSpec(response.canonical_yaml(), "canonical");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model.arch, "resnet56");
  EXPECT_EQ(response.warnings_size(), 0);
}

TEST_F(CoordinatorTest, AValidJobsWarningsComeBackWithIt) {
  std::string yaml = ReadFile("examples/resnet56-cifar10.yaml");
  const std::string stability = "history: 3, window: 3}";
  ASSERT_NE(yaml.find(stability), std::string::npos);
  // J̄ can first reach the threshold at 5 + 29 + 99 = 133, after sparsityEndEpoch 130.
  yaml.replace(yaml.find(stability), stability.size(), "history: 30, window: 100}");
  ocs::v1::ValidateJobRequest request;
  request.set_spec_yaml(yaml);
  ocs::v1::ValidateJobResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ValidateJob(&context, request, &response).ok());
  EXPECT_TRUE(response.valid());
  ASSERT_EQ(response.warnings_size(), 1);
  EXPECT_EQ(response.warnings(0).field(), "spec.stability.window");
  EXPECT_THAT(response.warnings(0).problem(), ::testing::HasSubstr("at epoch 133 at the earliest"));
}

TEST_F(CoordinatorTest, SubmitGetListCancelAndTheirErrors) {
  ocs::v1::SubmitJobRequest submit;
  submit.set_spec_yaml(ReadFile("examples/resnet56-cifar10.yaml"));
  ocs::v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->SubmitJob(&context, submit, &submitted).ok());
  }
  EXPECT_EQ(submitted.job().state(), ocs::v1::JOB_STATE_PENDING);
  EXPECT_EQ(submitted.job().labels().at("team"), "vision");

  submit.set_spec_yaml("apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: x}\nspec: {}\n");
  submit.set_source("x.yaml");
  {
    grpc::ClientContext context;
    ocs::v1::SubmitJobResponse response;
    const grpc::Status status = stub_->SubmitJob(&context, submit, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr("spec.model: is required (x.yaml:4:"));
  }
  ocs::v1::GetJobRequest get;
  get.set_id(submitted.job().id());
  ocs::v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->GetJob(&context, get, &job).ok());
    EXPECT_EQ(job.spec_yaml(), submitted.job().spec_yaml());
  }
  get.set_id("no-such-job");
  {
    grpc::ClientContext context;
    EXPECT_EQ(stub_->GetJob(&context, get, &job).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  ocs::v1::ListJobsRequest list;
  (*list.mutable_label_selector())["team"] = "vision";
  ocs::v1::ListJobsResponse listed;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListJobs(&context, list, &listed).ok());
    ASSERT_EQ(listed.jobs_size(), 1);
  }
  ocs::v1::CancelJobRequest cancel;
  cancel.set_id(submitted.job().id());
  for (grpc::StatusCode expected : {grpc::StatusCode::OK, grpc::StatusCode::FAILED_PRECONDITION}) {
    grpc::ClientContext context;
    EXPECT_EQ(stub_->CancelJob(&context, cancel, &job).error_code(), expected);
  }
  EXPECT_EQ(job.state(), ocs::v1::JOB_STATE_CANCELLED);
}

TEST_F(CoordinatorTest, JobsSurviveACoordinatorRestart) {
  ocs::v1::SubmitJobRequest submit;
  submit.set_spec_yaml(ReadFile("examples/resnet20-fashion-mnist.yaml"));
  ocs::v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->SubmitJob(&context, submit, &submitted).ok());
  }
  coordinator_->Signal(SIGKILL);  // no clean shutdown: the store must already hold the job
  coordinator_->Wait();
  coordinator_ = std::make_unique<Subprocess>(
      std::vector<std::string>{OCS_COORDINATOR_BIN, "--listen", address_, "--data-dir", DataDir(),
                               "--metrics-listen", kAnyPort},
      log_path_);
  // A channel of its own: gRPC's shared subchannel pool may still hold the dead connection.
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), arguments);
  ASSERT_TRUE(
      channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)));
  stub_ = ocs::v1::JobService::NewStub(channel_);
  ocs::v1::GetJobRequest get;
  get.set_id(submitted.job().id());
  ocs::v1::Job job;
  grpc::ClientContext context;
  // The channel may still hold the dead server's connection: wait for a ready one.
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  const grpc::Status status = stub_->GetJob(&context, get, &job);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << ReadFile(log_path_);
  EXPECT_EQ(job.name(), "resnet20-fashion-mnist");
}

TEST_F(CoordinatorTest, WorkersRegisterHeartbeatAndAreListed) {
  auto workers = ocs::v1::WorkerService::NewStub(channel_);
  const ocs::v1::RegisterWorkerRequest request = CpuWorker(2);
  ocs::v1::RegisterWorkerResponse registered;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(workers->RegisterWorker(&context, request, &registered).ok());
    EXPECT_GT(registered.lease_seconds(), 0);
  }
  {
    grpc::ClientContext context;
    ocs::v1::HeartbeatRequest heartbeat;
    heartbeat.set_worker_id(registered.worker_id());
    ocs::v1::HeartbeatResponse response;
    EXPECT_TRUE(workers->Heartbeat(&context, heartbeat, &response).ok());
  }
  {
    grpc::ClientContext context;
    ocs::v1::ListWorkersResponse listed;
    ASSERT_TRUE(workers->ListWorkers(&context, {}, &listed).ok());
    ASSERT_EQ(listed.workers_size(), 1);
    EXPECT_EQ(listed.workers(0).worker_id(), registered.worker_id());
    EXPECT_EQ(listed.workers(0).free_slots(), 2);
    EXPECT_TRUE(listed.workers(0).alive());
  }
  for (auto mutate : std::vector<std::function<void(ocs::v1::RegisterWorkerRequest&)>>{
           [](auto& r) { r.set_slots(0); }, [](auto& r) { r.set_host(""); },
           [](auto& r) { r.set_device(ocs::v1::DEVICE_TYPE_UNSPECIFIED); },
           [](auto& r) { r.set_version("0.0.1"); }}) {
    ocs::v1::RegisterWorkerRequest bad = request;
    mutate(bad);
    grpc::ClientContext context;
    EXPECT_EQ(workers->RegisterWorker(&context, bad, &registered).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::ClientContext context;
  ocs::v1::HeartbeatRequest unknown;
  unknown.set_worker_id("worker-nobody");
  ocs::v1::HeartbeatResponse response;
  EXPECT_EQ(workers->Heartbeat(&context, unknown, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorTest, UploadsFromAnyoneButRankZerosWorkerAreRefusedAndStoreNothing) {
  auto workers = ocs::v1::WorkerService::NewStub(channel_);
  auto upload = [&](const std::string& worker_id, const std::string& job_id,
                    const std::string& name) {
    grpc::ClientContext context;
    ocs::v1::UploadArtifactResponse response;
    auto writer = workers->UploadArtifact(&context, &response);
    ocs::v1::ArtifactChunk chunk;
    chunk.set_worker_id(worker_id);
    chunk.set_job_id(job_id);
    chunk.set_name(name);
    chunk.set_data("not a model");
    writer->Write(chunk);
    writer->WritesDone();
    return writer->Finish().error_code();
  };
  ocs::v1::RegisterWorkerResponse registered;
  grpc::ClientContext context;
  ASSERT_TRUE(workers->RegisterWorker(&context, CpuWorker(1), &registered).ok());
  ocs::v1::SubmitJobRequest submit;
  submit.set_spec_yaml(ReadFile("examples/resnet56-cifar10.yaml"));
  ocs::v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext submit_context;
    ASSERT_TRUE(stub_->SubmitJob(&submit_context, submit, &submitted).ok());
  }
  const std::string job = submitted.job().id();  // pending: it needs CUDA workers
  EXPECT_EQ(upload("worker-nobody", job, "model.pt"), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(upload(registered.worker_id(), job, "model.pt"), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(upload(registered.worker_id(), "nope-12345", "model.pt"), grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(std::filesystem::exists(DataDir() + "/artifacts/" + job));
}

// A worker of the test's own making: registered, with its session open. Its calls give up after
// a minute, so that a test waiting for a message the coordinator never sends ends.
class FakeWorker {
 public:
  using Stream = grpc::ClientReaderWriter<ocs::v1::WorkerMessage, ocs::v1::CoordinatorMessage>;

  explicit FakeWorker(ocs::v1::WorkerService::Stub& stub) : stub_(stub) {
    grpc::ClientContext context;
    const grpc::Status status = stub_.RegisterWorker(&context, CpuWorker(1), &registered_);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  const std::string& id() const { return registered_.worker_id(); }

  // Opens a session under `id` (its own by default) and says hello.
  std::unique_ptr<Stream> Open(grpc::ClientContext& context, const std::string& id = "") {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(1));
    auto stream = stub_.Session(&context);
    ocs::v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(id.empty() ? this->id() : id);
    EXPECT_TRUE(stream->Write(hello));
    return stream;
  }

 private:
  ocs::v1::WorkerService::Stub& stub_;
  ocs::v1::RegisterWorkerResponse registered_;
};

// A job for one CPU rank: the coordinator assigns it to the first worker with a free slot.
constexpr char kOneRankJob[] =
    "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: one-rank}\nspec:\n"
    "  model: {arch: resnet20}\n  data: {dataset: synthetic}\n"
    "  resources: {workers: 1, device: cpu}\n";

class WorkerApiTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    CoordinatorTest::SetUp();
    workers_ = ocs::v1::WorkerService::NewStub(channel_);
  }
  std::string Submit(const std::string& yaml) {
    ocs::v1::SubmitJobRequest submit;
    submit.set_spec_yaml(yaml);
    ocs::v1::SubmitJobResponse submitted;
    grpc::ClientContext context;
    const grpc::Status status = stub_->SubmitJob(&context, submit, &submitted);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return submitted.job().id();
  }
  ocs::v1::Job Get(const std::string& id) {
    ocs::v1::GetJobRequest get;
    get.set_id(id);
    ocs::v1::Job job;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->GetJob(&context, get, &job).ok());
    return job;
  }
  // The next assignment on `stream`, or none when the session ends first.
  static std::optional<ocs::v1::Assignment> NextAssignment(FakeWorker::Stream& stream) {
    ocs::v1::CoordinatorMessage message;
    while (stream.Read(&message)) {
      if (message.has_assignment()) return message.assignment();
    }
    return std::nullopt;
  }

  std::unique_ptr<ocs::v1::WorkerService::Stub> workers_;
};

// The worker's session with a job's rank 0 assigned, for uploading that job's artifacts.
class UploadTest : public WorkerApiTest {
 protected:
  void SetUp() override {
    WorkerApiTest::SetUp();
    worker_ = std::make_unique<FakeWorker>(*workers_);
    session_ = worker_->Open(session_context_);
    job_ = Submit(kOneRankJob);
    const auto assignment = NextAssignment(*session_);
    ASSERT_TRUE(assignment.has_value()) << ReadFile(log_path_);
    ASSERT_EQ(assignment->job_id(), job_);
  }
  void TearDown() override {
    session_context_.TryCancel();
    (void)session_->Finish();
  }

  enum class Ending { kWritesDone, kCancel };
  struct Sent {
    std::string data;                   // what arrives, in 4-byte chunks
    std::optional<int64_t> total_size;  // what the first chunk announces
    std::optional<uint32_t> crc32;
    Ending ending = Ending::kWritesDone;
  };
  grpc::Status Upload(const Sent& sent) {
    grpc::ClientContext context;
    ocs::v1::UploadArtifactResponse response;
    auto writer = workers_->UploadArtifact(&context, &response);
    ocs::v1::ArtifactChunk chunk;
    chunk.set_worker_id(worker_->id());
    chunk.set_job_id(job_);
    chunk.set_name("model.pt");
    if (sent.total_size) chunk.set_total_size(*sent.total_size);
    if (sent.crc32) chunk.set_crc32(*sent.crc32);
    for (size_t at = 0; at == 0 || at < sent.data.size(); at += 4) {
      chunk.set_data(sent.data.substr(at, 4));
      if (!writer->Write(chunk)) break;
      chunk.Clear();
    }
    if (sent.ending == Ending::kCancel) {
      // A worker killed mid-upload: give the coordinator time to take what was sent, then cut.
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      context.TryCancel();
    } else {
      writer->WritesDone();
    }
    return writer->Finish();
  }
  // The job's artifact folder, temporary files included, once no upload writes there any more.
  std::vector<std::string> StoredFiles() {
    const std::string folder = DataDir() + "/artifacts/" + job_;
    std::vector<std::string> names;
    for (int i = 0; i < 100; ++i) {
      names.clear();
      bool temporary = false;
      if (std::filesystem::exists(folder)) {
        for (const auto& entry : std::filesystem::directory_iterator(folder)) {
          names.push_back(entry.path().filename().string());
          temporary |= names.back().front() == '.';
        }
      }
      if (!temporary) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return names;
  }

  std::unique_ptr<FakeWorker> worker_;
  grpc::ClientContext session_context_;
  std::unique_ptr<FakeWorker::Stream> session_;
  std::string job_;
  const std::string model_ = "the whole of a model, 32 bytes..";
};

TEST_F(UploadTest, ACutOrDamagedUploadIsRefusedAndNothingIsStored) {
  const int64_t size = static_cast<int64_t>(model_.size());
  const uint32_t crc = api::ExtendCrc32(0, model_);
  const std::string half = model_.substr(0, 16);

  grpc::Status status = Upload({model_, std::nullopt, std::nullopt});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("total_size and crc32"));

  status = Upload({half, size, crc});  // the worker's file ended early, say
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("model.pt: received 16 of 32 bytes"));

  std::string damaged = model_;
  damaged[20] = '!';
  status = Upload({damaged, size, crc});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("damaged"));

  status = Upload({half, size, crc, Ending::kCancel});  // the worker was killed mid-upload
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);

  EXPECT_THAT(StoredFiles(), ::testing::IsEmpty());  // not even a temporary file
  EXPECT_EQ(Get(job_).artifacts_size(), 0) << ReadFile(log_path_);
}

TEST_F(UploadTest, AWholeUploadIsStoredAndListed) {
  const grpc::Status status =
      Upload({model_, static_cast<int64_t>(model_.size()), api::ExtendCrc32(0, model_)});
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(StoredFiles(), ::testing::ElementsAre("model.pt"));
  EXPECT_EQ(ReadFile(DataDir() + "/artifacts/" + job_ + "/model.pt"), model_);
  const ocs::v1::Job job = Get(job_);
  ASSERT_EQ(job.artifacts_size(), 1);
  EXPECT_EQ(job.artifacts(0).size_bytes(), 32);
}

// Workers register afresh for every session, so a second session under a live one's id is a copy
// (or an impostor): it is refused, and the live session keeps its place in the schedule.
TEST_F(WorkerApiTest, ASecondSessionUnderALiveWorkersIdIsRefusedAndTheFirstKeepsRunning) {
  FakeWorker worker(*workers_);
  grpc::ClientContext live_context;
  auto live = worker.Open(live_context);
  // Its first job shows that the live session is in place before the copy says hello: sessions
  // opened together are taken in no particular order.
  const std::string first = Submit(kOneRankJob);
  ASSERT_TRUE(NextAssignment(*live).has_value()) << ReadFile(log_path_);
  {
    grpc::ClientContext copy_context;
    auto copy = worker.Open(copy_context, worker.id());
    ocs::v1::CoordinatorMessage message;
    EXPECT_FALSE(copy->Read(&message));
    copy->WritesDone();
    const grpc::Status refused = copy->Finish();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_THAT(refused.error_message(), ::testing::HasSubstr(worker.id()));
  }
  // The copy has gone; the live session still reports and gets work.
  const std::string job = Submit(kOneRankJob);
  ocs::v1::WorkerMessage done;
  done.mutable_finished()->set_job_id(first);
  done.mutable_finished()->set_succeeded(true);
  ASSERT_TRUE(live->Write(done));
  const auto assignment = NextAssignment(*live);
  ASSERT_TRUE(assignment.has_value()) << ReadFile(log_path_);
  EXPECT_EQ(assignment->job_id(), job);
  EXPECT_EQ(Get(job).state(), ocs::v1::JOB_STATE_SCHEDULED);
  live_context.TryCancel();
  (void)live->Finish();
}

// Rank 1 runs out of memory and rank 0, cut off from it, is heard first: rank 0's report sends the
// job back to the queue to restart, and rank 1's, of the attempt just stopped, fails it instead.
TEST_F(WorkerApiTest, AnOutOfMemoryRankHeardAfterItsCutOffPeerFailsTheJobInsteadOfARestart) {
  FakeWorker workers[2] = {FakeWorker(*workers_), FakeWorker(*workers_)};
  grpc::ClientContext contexts[2];
  std::unique_ptr<FakeWorker::Stream> sessions[2];
  for (int i = 0; i < 2; ++i) sessions[i] = workers[i].Open(contexts[i]);
  const std::string job = Submit(
      "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: two-ranks}\nspec:\n"
      "  model: {arch: resnet20}\n  data: {dataset: synthetic}\n"
      "  resources: {workers: 2, device: cpu}\n");
  std::optional<ocs::v1::Assignment> assignments[2];
  for (int i = 0; i < 2; ++i) {
    assignments[i] = NextAssignment(*sessions[i]);
    ASSERT_TRUE(assignments[i].has_value()) << ReadFile(log_path_);
  }
  const int rank0 = assignments[0]->rank() == 0 ? 0 : 1, rank1 = 1 - rank0;
  auto finish = [&](int i, const std::string& message, bool retryable, bool out_of_memory) {
    ocs::v1::WorkerMessage out;
    ocs::v1::RankFinished& finished = *out.mutable_finished();
    finished.set_job_id(job);
    finished.set_attempt(assignments[i]->attempt());
    finished.set_rank(assignments[i]->rank());
    finished.set_message(message);
    finished.set_retryable(retryable);
    finished.set_out_of_memory(out_of_memory);
    EXPECT_TRUE(sessions[i]->Write(out));
  };
  auto wait_for = [&](ocs::v1::JobState state) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (Get(job).state() != state && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Get(job);
  };
  finish(rank0, "training stopped: Connection closed by peer", true, false);
  ASSERT_EQ(wait_for(ocs::v1::JOB_STATE_PENDING).state(), ocs::v1::JOB_STATE_PENDING)
      << ReadFile(log_path_);
  // Rank 0's worker leaves too: the restart cannot be placed, however long rank 1's report takes.
  contexts[rank0].TryCancel();
  (void)sessions[rank0]->Finish();
  finish(rank1, "training stopped: out of memory on device cpu at spec.training.batchSize 64",
         false, true);
  const ocs::v1::Job failed = wait_for(ocs::v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.state(), ocs::v1::JOB_STATE_FAILED) << ReadFile(log_path_);
  EXPECT_THAT(failed.message(),
              ::testing::StartsWith("rank 1: training stopped: out of memory on device cpu"));
  contexts[rank1].TryCancel();
  (void)sessions[rank1]->Finish();
}

// Workers whose lease runs out count in ocs_workers_lost_total, which operators alert on, except a
// registration that its own worker replaced when it registered again after its session broke.
class ShortLeaseTest : public WorkerApiTest {
 protected:
  void SetUp() override {
    lease_seconds_ = 1;
    WorkerApiTest::SetUp();
  }
  std::string Register(const std::string& host, const std::string& replaces = "") {
    ocs::v1::RegisterWorkerRequest request = CpuWorker(1);
    request.set_host(host);
    request.set_replaces(replaces);
    ocs::v1::RegisterWorkerResponse registered;
    grpc::ClientContext context;
    EXPECT_TRUE(workers_->RegisterWorker(&context, request, &registered).ok());
    return registered.worker_id();
  }
};

TEST_F(ShortLeaseTest, ARegistrationReplacedByItsOwnWorkerIsNotCountedAsLost) {
  const std::string first = Register("10.0.0.1");
  Register("10.0.0.1", first);  // the same worker again: no loss
  const std::string other = Register("10.0.0.2");
  Register("10.0.0.3", other);             // another host cannot hide a loss
  Register("10.0.0.4", "worker-unknown");  // nor can an id never seen
  // All five run out their 1 s lease; the coordinator drops them within a second more.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  ocs::v1::ListWorkersResponse listed;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    grpc::ClientContext context;
    ASSERT_TRUE(workers_->ListWorkers(&context, {}, &listed).ok());
  } while (listed.workers_size() > 0 && std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(listed.workers_size(), 0) << ReadFile(log_path_);
  const HttpResponse metrics = HttpGet(metrics_port_, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, ::testing::HasSubstr("\nocs_workers_lost_total 4\n")) << metrics.body;
}

TEST_F(CoordinatorTest, ExitsCleanlyOnSigterm) {
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0) << ReadFile(log_path_);
  EXPECT_THAT(ReadFile(log_path_), ::testing::HasSubstr("shutting down"));
}

TEST(CoordinatorStartupTest, ReportsAnAddressItCannotBind) {
  const CommandResult result =
      RunCommand({OCS_COORDINATOR_BIN, "--listen", "203.0.113.1:1", "--metrics-listen", ""},
                 std::chrono::seconds(20));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.out + result.err, ::testing::HasSubstr("cannot listen on 203.0.113.1:1"));
}

}  // namespace
}  // namespace ocs::testing
