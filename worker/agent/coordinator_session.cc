#include "worker/agent/coordinator_session.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/version.h"
#include "ocs/v1/worker_service.grpc.pb.h"

namespace ocs::worker::agent {
namespace {

using Stream = grpc::ClientReaderWriter<ocs::v1::WorkerMessage, ocs::v1::CoordinatorMessage>;

absl::StatusOr<common::Verdict> VerdictFrom(const ocs::v1::Verdict& in) {
  common::Verdict verdict;
  verdict.epoch = in.epoch();
  verdict.kind = in.kind() == ocs::v1::VERDICT_KIND_PRUNE ? common::Verdict::Kind::kPrune
                                                          : common::Verdict::Kind::kContinue;
  verdict.phase = common::PhaseFromString(in.phase()).value_or(common::Phase::kDense);
  verdict.lambda = in.lambda();
  if (!in.mask().empty()) {
    auto mask = common::DecodeMask(in.mask());
    if (!mask.ok()) return mask.status();
    verdict.mask = *std::move(mask);
  }
  if (in.has_stability()) verdict.point = common::StabilityPoint{in.epoch(), in.j(), in.j_bar()};
  return verdict;
}

}  // namespace

struct CoordinatorSession::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ocs::v1::WorkerService::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream;
  int lease_seconds = 30;

  std::mutex mutex;  // guards everything below and writes to the stream
  std::condition_variable changed;
  std::deque<Assignment> assignments;
  // By (job, attempt, epoch), and (job, attempt) -> reason.
  std::map<std::tuple<std::string, int, int>, ocs::v1::Verdict> verdicts;
  std::map<std::pair<std::string, int>, std::string> cancelled;
  bool ended = false;
  std::thread reader, heartbeat;

  bool Write(const ocs::v1::WorkerMessage& message) {
    std::lock_guard<std::mutex> lock(mutex);
    return !ended && stream->Write(message);
  }
};

CoordinatorSession::CoordinatorSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<CoordinatorSession>> CoordinatorSession::Open(
    const SessionOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->channel = grpc::CreateChannel(options.coordinator, grpc::InsecureChannelCredentials());
  impl->stub = ocs::v1::WorkerService::NewStub(impl->channel);
  ocs::v1::RegisterWorkerRequest request;
  request.set_host(options.host);
  request.set_device(options.device == common::Device::kCuda ? ocs::v1::DEVICE_TYPE_CUDA
                                                             : ocs::v1::DEVICE_TYPE_CPU);
  request.set_slots(options.slots);
  request.set_version(common::kVersion);
  ocs::v1::RegisterWorkerResponse registered;
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status status = impl->stub->RegisterWorker(&context, request, &registered);
  if (!status.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("registering with ", options.coordinator, ": ", status.error_message()));
  }
  impl->lease_seconds = registered.lease_seconds();
  impl->stream = impl->stub->Session(&impl->context);
  ocs::v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id(registered.worker_id());
  if (!impl->stream->Write(hello)) {
    return absl::UnavailableError(absl::StrCat("session with ", options.coordinator, " closed"));
  }
  auto session = std::unique_ptr<CoordinatorSession>(new CoordinatorSession(std::move(impl)));
  session->worker_id_ = registered.worker_id();
  session->impl_->reader = std::thread([s = session.get()] { s->ReadLoop(); });
  session->impl_->heartbeat = std::thread([s = session.get()] { s->HeartbeatLoop(); });
  return session;
}

CoordinatorSession::~CoordinatorSession() {
  impl_->context.TryCancel();
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->ended = true;
  }
  impl_->changed.notify_all();
  if (impl_->reader.joinable()) impl_->reader.join();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  (void)impl_->stream->Finish();
}

void CoordinatorSession::ReadLoop() {
  ocs::v1::CoordinatorMessage message;
  while (impl_->stream->Read(&message)) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (message.has_assignment()) {
      const auto& a = message.assignment();
      impl_->assignments.push_back({a.job_id(), a.spec_yaml(), a.rank(), a.world_size(), a.master(),
                                    a.attempt(), a.resume()});
    } else if (message.has_verdict()) {
      const auto& v = message.verdict();
      impl_->verdicts[{v.job_id(), v.attempt(), v.epoch()}] = v;
    } else if (message.has_cancel()) {
      const auto& c = message.cancel();
      impl_->cancelled[{c.job_id(), c.attempt()}] = c.reason();
    }
    impl_->changed.notify_all();
  }
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->ended = true;
  impl_->changed.notify_all();
}

void CoordinatorSession::HeartbeatLoop() {
  const auto period = std::chrono::milliseconds(impl_->lease_seconds * 1000 / 3);
  std::unique_lock<std::mutex> lock(impl_->mutex);
  while (!impl_->changed.wait_for(lock, period, [this] { return impl_->ended; })) {
    lock.unlock();
    ocs::v1::HeartbeatRequest request;
    request.set_worker_id(worker_id_);
    ocs::v1::HeartbeatResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + period);
    const grpc::Status status = impl_->stub->Heartbeat(&context, request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      // The coordinator declared this worker lost: end the session, so that the worker stops
      // its ranks and joins again.
      spdlog::warn("heartbeat: {}; leaving the session", status.error_message());
      impl_->context.TryCancel();
      return;
    } else if (!status.ok()) {
      spdlog::warn("heartbeat: {}", status.error_message());
    }
    lock.lock();
  }
}

std::optional<Assignment> CoordinatorSession::NextAssignment() {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  impl_->changed.wait(lock, [this] { return impl_->ended || !impl_->assignments.empty(); });
  if (impl_->assignments.empty()) return std::nullopt;
  Assignment next = impl_->assignments.front();
  impl_->assignments.pop_front();
  return next;
}

absl::StatusOr<common::Verdict> CoordinatorSession::Exchange(const Assignment& assignment,
                                                             const train::BoundaryReport& report) {
  const std::string& job_id = assignment.job_id;
  ocs::v1::WorkerMessage message;
  ocs::v1::EpochReport* out = message.mutable_report();
  out->set_job_id(job_id);
  out->set_attempt(assignment.attempt);
  out->set_rank(assignment.rank);
  out->set_epoch(report.epoch);
  if (report.mask) out->set_mask(common::EncodeMask(*report.mask));
  out->set_train_loss(report.train_loss);
  out->set_train_accuracy(report.train_accuracy);
  out->set_test_loss(report.test_loss);
  out->set_test_accuracy(report.test_accuracy);
  out->set_flops(report.flops);
  out->set_weights_digest(report.weights_digest);
  if (!impl_->Write(message)) return absl::UnavailableError("the coordinator session ended");
  std::unique_lock<std::mutex> lock(impl_->mutex);
  const auto key = std::make_tuple(job_id, assignment.attempt, report.epoch);
  const auto attempt = std::make_pair(job_id, assignment.attempt);
  impl_->changed.wait(lock, [&] {
    return impl_->ended || impl_->verdicts.count(key) || impl_->cancelled.count(attempt);
  });
  if (impl_->cancelled.count(attempt)) {
    return absl::CancelledError(absl::StrCat("job ", job_id, ": ", impl_->cancelled[attempt]));
  }
  if (!impl_->verdicts.count(key)) return absl::UnavailableError("the coordinator session ended");
  // Kept, not taken: every local rank of the job reads the same verdict (dropped at Finished).
  return VerdictFrom(impl_->verdicts[key]);
}

absl::Status CoordinatorSession::Upload(const Assignment& assignment, const std::string& name,
                                        const std::string& path) {
  constexpr size_t kChunkBytes = 1 << 20;
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  ocs::v1::UploadArtifactResponse response;
  auto writer = impl_->stub->UploadArtifact(&context, &response);
  ocs::v1::ArtifactChunk chunk;
  chunk.set_job_id(assignment.job_id);
  chunk.set_attempt(assignment.attempt);
  chunk.set_worker_id(worker_id_);
  chunk.set_name(name);
  std::string buffer(kChunkBytes, '\0');
  do {  // the header goes with the first chunk, even for an empty file
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(file.gcount()));
    if (!writer->Write(chunk)) break;  // the server ended the call: Finish says why
    chunk.Clear();
  } while (file);
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("uploading ", name, ": ", status.error_message()));
  }
  return absl::OkStatus();
}

void CoordinatorSession::Progress(const Assignment& assignment, int epoch, int64_t step,
                                  int64_t steps) {
  ocs::v1::WorkerMessage message;
  ocs::v1::StepProgress* out = message.mutable_progress();
  out->set_job_id(assignment.job_id);
  out->set_attempt(assignment.attempt);
  out->set_epoch(epoch);
  out->set_step(step);
  out->set_steps(steps);
  impl_->Write(message);
}

bool CoordinatorSession::ShouldStop(const Assignment& assignment) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->ended || impl_->cancelled.count({assignment.job_id, assignment.attempt}) > 0;
}

void CoordinatorSession::Finished(const Assignment& assignment, bool succeeded,
                                  const std::string& message) {
  const std::string& job_id = assignment.job_id;
  ocs::v1::WorkerMessage out;
  out.mutable_finished()->set_job_id(job_id);
  out.mutable_finished()->set_attempt(assignment.attempt);
  out.mutable_finished()->set_rank(assignment.rank);
  out.mutable_finished()->set_succeeded(succeeded);
  out.mutable_finished()->set_message(message);
  impl_->Write(out);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (auto it = impl_->verdicts.begin(); it != impl_->verdicts.end();) {
    const bool mine =
        std::get<0>(it->first) == job_id && std::get<1>(it->first) == assignment.attempt;
    it = mine ? impl_->verdicts.erase(it) : std::next(it);
  }
}

}  // namespace ocs::worker::agent
