#include "tests/support/loopback_cluster.h"

#include <signal.h>

#include <filesystem>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/http.h"
#include "tests/support/memory_limit.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// One Job API call with a deadline, again while the coordinator is away (UNAVAILABLE): across a
// coordinator restart a call can meet the closing connection.
template <typename Call>
absl::Status CallAcrossRestarts(Call call) {
  grpc::Status status;
  for (int attempt = 0; attempt < 50; ++attempt) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    status = call(&context);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return FromGrpc(status);
}

// Asks `done` every 100 ms until it says yes (true) or `timeout` passes (false).
template <typename Done>
bool PollUntil(std::chrono::seconds timeout, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

}  // namespace

std::string SmallJobYaml(const std::string& name, int workers, int epochs, int checkpoint_every) {
  return absl::StrCat(
      "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: ", name,
      "}\nspec:\n"
      "  model: {arch: resnet20, numClasses: 4, inputShape: [3, 12, 12]}\n"
      "  data: {dataset: synthetic, trainLimit: 256, testLimit: 64}\n"
      "  training: {epochs: ",
      epochs,
      ", batchSize: 32}\n"
      "  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: ",
      epochs - 2, "}\n  resources: {workers: ", workers,
      ", device: cpu}\n  checkpoint: {everyEpochs: ", checkpoint_every, "}\n");
}

std::string RestartableJobYaml(const std::string& name) {
  return SmallJobYaml(name, /*workers=*/2, /*epochs=*/8, /*checkpoint_every=*/1);
}

BoundaryAudit AuditBoundaries(const ocs::v1::GetStabilityResponse& stability, int epochs) {
  BoundaryAudit audit;
  std::vector<int> seen(epochs, 0);
  int previous = -1;
  for (const ocs::v1::EpochBoundary& b : stability.boundaries()) {
    ++audit.stored;
    audit.prunes += b.prune();
    if (b.epoch() <= previous) ++audit.out_of_order;
    previous = b.epoch();
    if (b.epoch() >= 0 && b.epoch() < epochs) ++seen[b.epoch()];
  }
  for (int count : seen) {
    if (count == 0) ++audit.missing;
    if (count > 1) audit.duplicated += count - 1;
  }
  return audit;
}

bool Terminal(ocs::v1::JobState state) {
  return state == ocs::v1::JOB_STATE_SUCCEEDED || state == ocs::v1::JOB_STATE_FAILED ||
         state == ocs::v1::JOB_STATE_CANCELLED;
}

LoopbackCluster::LoopbackCluster(std::string dir)
    : dir_(std::move(dir)),
      address_(absl::StrCat("127.0.0.1:", PickFreePort())),
      rendezvous_port_(PickFreePort()) {
  fs::remove_all(dir_);
  fs::create_directories(dir_);
}

absl::Status LoopbackCluster::StartCoordinator(const std::vector<std::string>& extra_flags,
                                               const std::vector<std::string>& environment) {
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
      command, absl::StrCat(dir_, "/coordinator", coordinator_starts_++, ".log"), environment);
  if (!jobs_) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), arguments);
    jobs_ = ocs::v1::JobService::NewStub(channel_);
  }
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
    return absl::UnavailableError(absl::StrCat("the coordinator at ", address_, " did not start"));
  }
  return absl::OkStatus();
}

void LoopbackCluster::KillCoordinator() {
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
}

Subprocess& LoopbackCluster::StartWorker(const WorkerOptions& options) {
  const int n = workers();
  const std::string work_dir = options.shared ? dir_ + "/shared" : absl::StrCat(dir_, "/worker", n);
  std::vector<std::string> command{
      OCS_WORKER_BIN,     "serve",
      "--coordinator",    options.coordinator.empty() ? address_ : options.coordinator,
      "--slots",          std::to_string(options.slots),
      "--threads",        "1",
      "--work-dir",       work_dir,
      "--metrics-listen", kAnyPort};
  command.insert(command.end(), options.extra_flags.begin(), options.extra_flags.end());
  if (options.memory_limit_bytes > 0)
    command = WithMemoryLimit(options.memory_limit_bytes, command);
  workers_.push_back(std::make_unique<Subprocess>(command, absl::StrCat(dir_, "/worker", n, ".log"),
                                                  options.environment));
  return *workers_.back();
}

// A unary Job API call across coordinator restarts, its response or the call's status.
template <typename Request, typename Response>
absl::StatusOr<Response> LoopbackCluster::Unary(
    grpc::Status (ocs::v1::JobService::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  Response response;
  const absl::Status status = CallAcrossRestarts([&](grpc::ClientContext* context) {
    return (jobs_.get()->*rpc)(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<std::string> LoopbackCluster::Submit(const std::string& yaml) {
  ocs::v1::SubmitJobRequest request;
  request.set_spec_yaml(yaml);
  auto response = Unary(&ocs::v1::JobService::Stub::SubmitJob, request);
  if (!response.ok()) return response.status();
  return response->job().id();
}

absl::StatusOr<ocs::v1::Job> LoopbackCluster::Get(const std::string& id) {
  ocs::v1::GetJobRequest request;
  request.set_id(id);
  return Unary(&ocs::v1::JobService::Stub::GetJob, request);
}

absl::StatusOr<ocs::v1::Job> LoopbackCluster::GetOnce(const std::string& id,
                                                      std::chrono::milliseconds deadline) {
  ocs::v1::GetJobRequest request;
  request.set_id(id);
  ocs::v1::Job job;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  const grpc::Status status = jobs_->GetJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<ocs::v1::GetStabilityResponse> LoopbackCluster::Stability(const std::string& id) {
  ocs::v1::GetStabilityRequest request;
  request.set_id(id);
  return Unary(&ocs::v1::JobService::Stub::GetStability, request);
}

absl::StatusOr<std::string> LoopbackCluster::Download(const std::string& id,
                                                      const std::string& name) {
  ocs::v1::DownloadArtifactRequest request;
  request.set_id(id);
  request.set_name(name);
  std::string bytes;
  absl::Status status = CallAcrossRestarts([&](grpc::ClientContext* context) {
    bytes.clear();
    auto reader = jobs_->DownloadArtifact(context, request);
    ocs::v1::ArtifactData data;
    while (reader->Read(&data)) bytes += data.data();
    return reader->Finish();
  });
  if (!status.ok()) return status;
  return bytes;
}

absl::StatusOr<ocs::v1::Job> LoopbackCluster::WaitForEnd(const std::string& id,
                                                         std::chrono::seconds timeout) {
  absl::StatusOr<ocs::v1::Job> job;
  PollUntil(timeout, [&] {
    job = Get(id);
    return !job.ok() || Terminal(job->state());
  });
  return job;
}

bool LoopbackCluster::WaitForBoundaries(const std::string& id, int count,
                                        std::chrono::seconds timeout) {
  return PollUntil(timeout, [&] {
    absl::StatusOr<ocs::v1::GetStabilityResponse> stability = Stability(id);
    return stability.ok() && stability->boundaries_size() >= count;
  });
}

std::string LoopbackCluster::CoordinatorLog(int start) const {
  return ReadFile(absl::StrCat(dir_, "/coordinator", start, ".log"));
}

std::string LoopbackCluster::CoordinatorMetrics() const {
  // The coordinator picks its metrics port (kAnyPort) and logs it.
  static const std::regex kPort("metrics on port (\\d+)");
  const std::string log = CoordinatorLog(coordinator_starts_ - 1);
  std::smatch port;
  if (!std::regex_search(log, port, kPort)) return "";
  return HttpGet(std::stoi(port[1]), "/metrics").body;
}

std::string LoopbackCluster::WorkerLog(int n) const {
  return ReadFile(absl::StrCat(dir_, "/worker", n, ".log"));
}

std::string LoopbackCluster::Logs() const {
  std::string logs;
  for (int n = 0; n < coordinator_starts_; ++n) logs += CoordinatorLog(n);
  for (int n = 0; n < workers(); ++n) logs += WorkerLog(n);
  return logs;
}

}  // namespace ocs::testing
