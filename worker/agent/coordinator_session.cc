#include "worker/agent/coordinator_session.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/version.h"
#include "ocs/v1/worker_service.grpc.pb.h"
#include "proto/artifact_checksum.h"
#include "proto/transport_security.h"

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

// A rank assigned to this worker: claimed again after a reconnection. A finished rank is
// remembered for a while: the coordinator keeps finishes in memory only, and one that restarts
// before all of a job's ranks finished hears them again from the claims.
struct RankState {
  Assignment assignment;
  std::optional<ocs::v1::EpochReport> pending;    // sent, its verdict not yet here
  std::optional<ocs::v1::RankFinished> finished;  // how it ended
  std::chrono::steady_clock::time_point finished_at;
};
constexpr std::chrono::minutes kRememberFinished{10};

ocs::v1::WorkerMessage Goodbye(const std::string& reason) {
  ocs::v1::WorkerMessage goodbye;
  goodbye.mutable_goodbye()->set_reason(reason);
  return goodbye;
}
using RankKey = std::tuple<std::string, int, int>;  // job, attempt, rank

RankKey KeyOf(const Assignment& a) { return {a.job_id, a.attempt, a.rank}; }

// gRPC's reconnect backoff grows to 120 s by default, but a restarted coordinator waits only
// --reattach-seconds (60) for workers to claim their running ranks: keep the retries frequent
// (3 s, up to 3.6 s with gRPC's jitter). GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays as it is: gRPC
// uses it as the time a connection attempt may take (20 s), which a slow TLS handshake needs.
grpc::ChannelArguments ReconnectingQuickly() {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 3000);
  return arguments;
}

bool Unreachable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

constexpr size_t kUploadChunkBytes = 1 << 20;

// What an upload's first chunk announces: the coordinator stores the file only when the bytes it
// received have this size and CRC-32, so a cut upload is never taken for the whole file.
struct FileSummary {
  int64_t size = 0;
  uint32_t crc32 = 0;
};

absl::StatusOr<FileSummary> Summarize(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  FileSummary summary;
  std::string buffer(kUploadChunkBytes, '\0');
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const absl::string_view read(buffer.data(), static_cast<size_t>(file.gcount()));
    summary.size += static_cast<int64_t>(read.size());
    summary.crc32 = api::ExtendCrc32(summary.crc32, read);
  }
  if (file.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return summary;
}

absl::Status UploadOnce(ocs::v1::WorkerService::Stub& stub, const Assignment& assignment,
                        const std::string& worker_id, const std::string& name,
                        const std::string& path) {
  auto summary = Summarize(path);
  if (!summary.ok()) return summary.status();
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  ocs::v1::UploadArtifactResponse response;
  auto writer = stub.UploadArtifact(&context, &response);
  ocs::v1::ArtifactChunk chunk;
  chunk.set_job_id(assignment.job_id);
  chunk.set_attempt(assignment.attempt);
  chunk.set_worker_id(worker_id);
  chunk.set_name(name);
  chunk.set_total_size(summary->size);
  chunk.set_crc32(summary->crc32);
  std::string buffer(kUploadChunkBytes, '\0');
  do {  // the header goes with the first chunk, even for an empty file
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(file.gcount()));
    if (!writer->Write(chunk)) break;  // the server ended the call: Finish says why
    chunk.Clear();
  } while (file);
  if (file.bad()) {  // the coordinator would refuse the part sent; cancelling says so at once
    context.TryCancel();
    (void)writer->Finish();
    return absl::DataLossError(absl::StrCat("uploading ", name, ": cannot read ", path));
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("uploading ", name, ": ", status.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace

struct CoordinatorSession::Impl {
  SessionOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ocs::v1::WorkerService::Stub> stub;

  mutable std::mutex mutex;  // guards everything below and writes to the stream
  std::condition_variable changed;
  // The current connection; Connect replaces it (only the connection thread does, after the
  // previous one closed).
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<Stream> stream;
  std::string worker_id;
  std::string last_registration;               // the newest id, even one whose session never opened
  grpc::ClientContext* registering = nullptr;  // the RegisterWorker call in flight
  grpc::ClientContext* heartbeating = nullptr;  // the Heartbeat call in flight
  int lease_seconds = 30;
  bool connected = false;
  bool ended = false;  // for good
  std::string end_reason;
  std::deque<Assignment> assignments;
  std::map<RankKey, RankState> ranks;
  // By (job, attempt, epoch), and (job, attempt) -> reason.
  std::map<std::tuple<std::string, int, int>, ocs::v1::Verdict> verdicts;
  std::map<std::pair<std::string, int>, std::string> cancelled;
  std::thread connection, heartbeat;

  // Requires mutex. False when there is no connection now: what must arrive is kept in `ranks`
  // and goes with the next hello.
  bool Write(const ocs::v1::WorkerMessage& message) { return connected && stream->Write(message); }

  void End(const std::string& reason) {
    ended = true;
    end_reason = reason;
    // The calls in flight give up now: a worker told to stop must not wait for a coordinator
    // that is away.
    if (registering) registering->TryCancel();
    if (heartbeating) heartbeating->TryCancel();
    changed.notify_all();
  }

  ocs::v1::WorkerMessage Hello(const std::string& id) const {
    ocs::v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(id);
    for (const auto& [key, rank] : ranks) {
      ocs::v1::RankClaim* claim = hello.mutable_hello()->add_ranks();
      claim->set_job_id(rank.assignment.job_id);
      claim->set_attempt(rank.assignment.attempt);
      claim->set_rank(rank.assignment.rank);
      claim->set_world_size(rank.assignment.world_size);
      claim->set_master(rank.assignment.master);
      if (rank.pending) *claim->mutable_pending() = *rank.pending;
      if (rank.finished) *claim->mutable_finished() = *rank.finished;
    }
    return hello;
  }
};

CoordinatorSession::CoordinatorSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<CoordinatorSession>> CoordinatorSession::Create(
    const SessionOptions& options) {
  auto credentials =
      api::MakeChannelCredentials({options.tls_ca, options.tls_cert, options.tls_key}, "");
  if (!credentials.ok()) return credentials.status();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->channel =
      grpc::CreateCustomChannel(options.coordinator, *credentials, ReconnectingQuickly());
  impl->stub = ocs::v1::WorkerService::NewStub(impl->channel);
  return std::unique_ptr<CoordinatorSession>(new CoordinatorSession(std::move(impl)));
}

absl::Status CoordinatorSession::Join() {
  if (absl::Status connected = Connect(); !connected.ok()) return connected;
  impl_->connection = std::thread([this] { ConnectionLoop(); });
  impl_->heartbeat = std::thread([this] { HeartbeatLoop(); });
  return absl::OkStatus();
}

CoordinatorSession::~CoordinatorSession() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->End("the worker is stopping");
    if (impl_->context) impl_->context->TryCancel();
  }
  if (impl_->connection.joinable()) impl_->connection.join();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
}

std::string CoordinatorSession::worker_id() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->worker_id;
}

std::string CoordinatorSession::end_reason() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->end_reason;
}

absl::Status CoordinatorSession::Connect() {
  const std::string& address = impl_->options.coordinator;
  ocs::v1::RegisterWorkerRequest request;
  request.set_host(impl_->options.host);
  request.set_device(impl_->options.device == common::Device::kCuda ? ocs::v1::DEVICE_TYPE_CUDA
                                                                    : ocs::v1::DEVICE_TYPE_CPU);
  request.set_slots(impl_->options.slots);
  request.set_version(common::kVersion);
  ocs::v1::RegisterWorkerResponse registered;
  {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      // An ended session registers no more: a registration nobody uses would be counted lost.
      if (impl_->ended) return absl::CancelledError("the session has ended");
      request.set_replaces(impl_->last_registration);  // empty the first time
      impl_->registering = &context;
    }
    const grpc::Status status = impl_->stub->RegisterWorker(&context, request, &registered);
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      impl_->registering = nullptr;
    }
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat("registering with ", address, ": ", status.error_message()));
    }
  }
  auto context = std::make_unique<grpc::ClientContext>();
  std::unique_ptr<Stream> stream = impl_->stub->Session(context.get());
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->last_registration = registered.worker_id();  // replaced by the next, session or not
  const ocs::v1::WorkerMessage hello = impl_->Hello(registered.worker_id());
  if (impl_->ended) {
    // Registered just as the worker left: say goodbye under this id too, or the coordinator would
    // count it lost when its lease runs out.
    if (stream->Write(hello) && stream->Write(Goodbye(impl_->end_reason))) stream->WritesDone();
    (void)stream->Finish();
    return absl::CancelledError(impl_->end_reason);
  }
  if (!stream->Write(hello)) {
    context->TryCancel();
    (void)stream->Finish();
    return absl::UnavailableError(absl::StrCat("session with ", address, " closed"));
  }
  if (!impl_->worker_id.empty()) {
    const auto& claims = hello.hello().ranks();
    const auto running =
        std::count_if(claims.begin(), claims.end(),
                      [](const ocs::v1::RankClaim& c) { return !c.has_finished(); });
    common::LogInfo(absl::StrCat("joined ", address, " again as ", registered.worker_id(),
                                 ", claiming ", running, " running rank(s) and ",
                                 claims.size() - running, " finished"));
  }
  impl_->context = std::move(context);
  impl_->stream = std::move(stream);
  impl_->worker_id = registered.worker_id();
  impl_->lease_seconds = registered.lease_seconds();
  impl_->connected = true;
  impl_->changed.notify_all();
  return absl::OkStatus();
}

void CoordinatorSession::ConnectionLoop() {
  while (true) {
    ReadLoop();
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      impl_->connected = false;
      impl_->changed.notify_all();
    }
    (void)impl_->stream->Finish();  // no writer uses a stream that is not connected
    constexpr std::chrono::milliseconds kMaxBackoff{5000};
    std::chrono::milliseconds backoff{1000};
    absl::Status status;
    while (!(status = Connect()).ok()) {
      std::unique_lock<std::mutex> lock(impl_->mutex);
      if (impl_->ended) return;
      if (!Unreachable(status)) {
        // Refused (another version, say): nothing this worker runs will be heard any more.
        common::LogError(std::string(status.message()));
        impl_->End(std::string(status.message()));
        return;
      }
      // Registering waits for the channel to connect: after a timeout, waiting long again only
      // delays the moment the coordinator is back (a short pause keeps this from spinning).
      const auto pause =
          absl::IsDeadlineExceeded(status) ? std::chrono::milliseconds(200) : backoff;
      common::LogWarning(absl::StrCat(status.message(), "; retrying in ", pause.count(), " ms"));
      if (impl_->changed.wait_for(lock, pause, [this] { return impl_->ended; })) return;
      if (!absl::IsDeadlineExceeded(status)) backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }
}

void CoordinatorSession::ReadLoop() {
  ocs::v1::CoordinatorMessage message;
  while (impl_->stream->Read(&message)) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (message.has_assignment()) {
      const auto& a = message.assignment();
      const Assignment assignment{a.job_id(), a.spec_yaml(), a.rank(),  a.world_size(),
                                  a.master(), a.attempt(),   a.resume()};
      impl_->assignments.push_back(assignment);
      impl_->ranks[KeyOf(assignment)].assignment = assignment;
    } else if (message.has_verdict()) {
      const auto& v = message.verdict();
      impl_->verdicts[{v.job_id(), v.attempt(), v.epoch()}] = v;
    } else if (message.has_cancel()) {
      const auto& c = message.cancel();
      impl_->cancelled[{c.job_id(), c.attempt()}] = c.reason();
    }
    impl_->changed.notify_all();
  }
}

void CoordinatorSession::HeartbeatLoop() {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  while (true) {
    const auto period = std::chrono::milliseconds(impl_->lease_seconds * 1000 / 3);
    if (impl_->changed.wait_for(lock, period, [this] { return impl_->ended; })) return;
    if (!impl_->connected) continue;
    ocs::v1::HeartbeatRequest request;
    request.set_worker_id(impl_->worker_id);
    ocs::v1::HeartbeatResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + period);
    impl_->heartbeating = &context;
    lock.unlock();
    const grpc::Status status = impl_->stub->Heartbeat(&context, request, &response);
    lock.lock();
    impl_->heartbeating = nullptr;
    if (impl_->ended) return;
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      // The coordinator declared this worker lost or forgot it in a restart: connect again and
      // claim the ranks; it re-attaches or cancels them.
      common::LogWarning(absl::StrCat("heartbeat: ", status.error_message(), "; joining again"));
      if (impl_->connected && impl_->worker_id == request.worker_id()) impl_->context->TryCancel();
    } else if (!status.ok()) {
      common::LogWarning(absl::StrCat("heartbeat: ", status.error_message()));
    }
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
  out->set_params(report.params);
  out->set_learning_rate(report.learning_rate);
  out->set_weights_digest(report.weights_digest);
  std::unique_lock<std::mutex> lock(impl_->mutex);
  const auto rank = impl_->ranks.find(KeyOf(assignment));
  if (rank != impl_->ranks.end()) rank->second.pending = *out;
  impl_->Write(message);  // without a connection the report goes with the next hello
  common::CrashPoint(common::crash_point::kReportSent);
  const auto key = std::make_tuple(job_id, assignment.attempt, report.epoch);
  const auto attempt = std::make_pair(job_id, assignment.attempt);
  impl_->changed.wait(lock, [&] {
    return impl_->ended || impl_->verdicts.count(key) || impl_->cancelled.count(attempt);
  });
  if (rank != impl_->ranks.end()) rank->second.pending.reset();
  if (impl_->cancelled.count(attempt)) {
    return absl::CancelledError(absl::StrCat("job ", job_id, ": ", impl_->cancelled[attempt]));
  }
  if (!impl_->verdicts.count(key)) return absl::UnavailableError("the coordinator session ended");
  // Kept, not taken: every local rank of the job reads the same verdict (dropped at Finished).
  return VerdictFrom(impl_->verdicts[key]);
}

absl::Status CoordinatorSession::Upload(const Assignment& assignment, const std::string& name,
                                        const std::string& path) {
  const auto give_up = std::chrono::steady_clock::now() + impl_->options.upload_retry;
  bool said_full = false;
  while (true) {
    std::string worker_id;
    {
      std::unique_lock<std::mutex> lock(impl_->mutex);
      impl_->changed.wait(lock, [this] { return impl_->ended || impl_->connected; });
      if (impl_->ended) return absl::UnavailableError("the coordinator session ended");
      worker_id = impl_->worker_id;
    }
    absl::Status status = UploadOnce(*impl_->stub, assignment, worker_id, name, path);
    // After a reconnection the coordinator may not know this worker or its re-attached rank 0
    // for a moment; a full disk may be freed. Try again until the attempt is cancelled or time
    // runs out.
    const bool disk_full = absl::IsResourceExhausted(status);
    const bool transient = Unreachable(status) || absl::IsNotFound(status) ||
                           absl::IsPermissionDenied(status) || disk_full;
    if (status.ok() || !transient || ShouldStop(assignment)) return status;
    if (std::chrono::steady_clock::now() > give_up) {
      return absl::Status(status.code(), absl::StrCat(status.message(), "; gave up after ",
                                                      impl_->options.upload_retry.count(),
                                                      " s, the file stays at ", path));
    }
    if (disk_full && !said_full) {
      common::LogWarning(absl::StrCat(status.message(), "; retrying for up to ",
                                      impl_->options.upload_retry.count(), " s"));
      said_full = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
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
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->Write(message);
}

void CoordinatorSession::Leave(const std::string& reason) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  // Without a connection the lease tells the coordinator instead.
  impl_->Write(Goodbye(reason));
  impl_->assignments.clear();
  impl_->End(reason);
}

bool CoordinatorSession::ShouldStop(const Assignment& assignment) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->ended || impl_->cancelled.count({assignment.job_id, assignment.attempt}) > 0;
}

void CoordinatorSession::Succeeded(const Assignment& assignment) {
  Finished(assignment, "", std::nullopt);
}

void CoordinatorSession::Failed(const Assignment& assignment, const std::string& message,
                                RankFailure failure) {
  Finished(assignment, message, failure);
}

void CoordinatorSession::Finished(const Assignment& assignment, const std::string& message,
                                  std::optional<RankFailure> failure) {
  const std::string& job_id = assignment.job_id;
  ocs::v1::WorkerMessage out;
  out.mutable_finished()->set_job_id(job_id);
  out.mutable_finished()->set_attempt(assignment.attempt);
  out.mutable_finished()->set_rank(assignment.rank);
  out.mutable_finished()->set_succeeded(!failure);
  out.mutable_finished()->set_message(message);
  out.mutable_finished()->set_retryable(failure == RankFailure::kRetryable);
  out.mutable_finished()->set_out_of_memory(failure == RankFailure::kOutOfMemory);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->Write(out);  // or, without a connection, with the next hello
  const auto now = std::chrono::steady_clock::now();
  const auto rank = impl_->ranks.find(KeyOf(assignment));
  if (rank != impl_->ranks.end()) {
    rank->second.pending.reset();
    rank->second.finished = out.finished();
    rank->second.finished_at = now;
  }
  for (auto it = impl_->ranks.begin(); it != impl_->ranks.end();) {
    const bool forgotten = it->second.finished && now - it->second.finished_at > kRememberFinished;
    it = forgotten ? impl_->ranks.erase(it) : std::next(it);
  }
  for (auto it = impl_->verdicts.begin(); it != impl_->verdicts.end();) {
    const bool mine =
        std::get<0>(it->first) == job_id && std::get<1>(it->first) == assignment.attempt;
    it = mine ? impl_->verdicts.erase(it) : std::next(it);
  }
}

}  // namespace ocs::worker::agent
