#include "server/worker_service.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/utf8.h"
#include "server/grpc_status.h"
#include "server/request_limits.h"
#include "server/worker_session.h"

namespace ocs::server {

grpc::Status WorkerService::RegisterWorker(grpc::ServerContext* context,
                                           const ocs::v1::RegisterWorkerRequest* request,
                                           ocs::v1::RegisterWorkerResponse* response) {
  if (grpc::Status denied = CheckWorker(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  common::Device device;
  switch (request->device()) {
    case ocs::v1::DEVICE_TYPE_CPU:
      device = common::Device::kCpu;
      break;
    case ocs::v1::DEVICE_TYPE_CUDA:
      device = common::Device::kCuda;
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "device: must be cpu or cuda");
  }
  auto worker = workers_.Register(request->host(), device, request->slots(), request->version(),
                                  request->replaces());
  if (!worker.ok()) return ToGrpcStatus(worker.status());
  response->set_worker_id(worker->id);
  response->set_lease_seconds(workers_.lease_seconds());
  return grpc::Status::OK;
}

grpc::Status WorkerService::Heartbeat(grpc::ServerContext* context,
                                      const ocs::v1::HeartbeatRequest* request,
                                      ocs::v1::HeartbeatResponse* response) {
  if (grpc::Status denied = CheckWorker(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  if (absl::Status status = workers_.Heartbeat(request->worker_id()); !status.ok()) {
    return ToGrpcStatus(status);
  }
  response->set_lease_seconds(workers_.lease_seconds());
  return grpc::Status::OK;
}

grpc::Status WorkerService::ListWorkers(grpc::ServerContext* context,
                                        const ocs::v1::ListWorkersRequest* request,
                                        ocs::v1::ListWorkersResponse* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  for (const WorkerInfo& worker : workers_.List()) {
    ocs::v1::Worker* out = response->add_workers();
    out->set_worker_id(worker.id);
    out->set_host(worker.host);
    out->set_device(worker.device == common::Device::kCuda ? ocs::v1::DEVICE_TYPE_CUDA
                                                           : ocs::v1::DEVICE_TYPE_CPU);
    out->set_slots(worker.slots);
    out->set_free_slots(worker.free_slots);
    out->set_version(worker.version);
    out->set_last_heartbeat_unix_ms(worker.last_heartbeat_ms);
    out->set_alive(workers_.Alive(worker));
  }
  return grpc::Status::OK;
}

namespace {

absl::StatusOr<RankReport> ReportFrom(const ocs::v1::EpochReport& in) {
  RankReport report{in.job_id(),        in.rank(),       in.attempt(),        in.epoch(),
                    std::nullopt,       in.train_loss(), in.train_accuracy(), in.test_loss(),
                    in.test_accuracy(), in.flops(),      in.weights_digest()};
  report.params = in.params();
  report.learning_rate = in.learning_rate();
  if (!in.mask().empty()) {
    auto mask = common::DecodeMask(in.mask());
    if (!mask.ok()) return mask.status();
    report.mask = *std::move(mask);
  }
  return report;
}

RankOutcome OutcomeFrom(const ocs::v1::RankFinished& in) {
  return {in.succeeded(), in.retryable(), in.message(), in.out_of_memory()};
}

// The ranks a reconnecting worker still runs. A claim whose pending report cannot be read is
// cancelled at once: its rank restarts with the job rather than feed a decision garbage.
std::vector<RankClaim> ClaimsFrom(const ocs::v1::SessionHello& hello, WorkerSession& session) {
  std::vector<RankClaim> claims;
  for (const ocs::v1::RankClaim& in : hello.ranks()) {
    RankClaim claim{in.job_id(), in.attempt(), in.rank(), in.world_size(), in.master(), {}, {}};
    if (in.has_pending()) {
      auto report = ReportFrom(in.pending());
      if (!report.ok()) {
        session.Cancel(in.job_id(), in.attempt(), std::string(report.status().message()));
        continue;
      }
      claim.pending = *std::move(report);
    }
    if (in.has_finished()) claim.finished = OutcomeFrom(in.finished());
    claims.push_back(std::move(claim));
  }
  return claims;
}

// What the upload's first chunk says the whole file is; InvalidArgument when it does not say.
absl::StatusOr<ArtifactFiles::Expected> ExpectedFrom(const ocs::v1::ArtifactChunk& header) {
  if (!header.has_total_size() || !header.has_crc32()) {
    return absl::InvalidArgumentError(
        "an upload's first chunk gives the file's total_size and crc32");
  }
  if (header.total_size() < 0 || header.total_size() > ArtifactFiles::kMaxBytes) {
    return absl::InvalidArgumentError(absl::StrCat("total_size ", header.total_size(),
                                                   ": an artifact has 0 to ",
                                                   ArtifactFiles::kMaxBytes, " bytes"));
  }
  return ArtifactFiles::Expected{header.total_size(), header.crc32()};
}

// Appends `chunk`'s data and that of every later chunk to `upload`, until the reads end.
grpc::Status Receive(grpc::ServerReader<ocs::v1::ArtifactChunk>* reader,
                     ocs::v1::ArtifactChunk& chunk, ArtifactFiles::Upload& upload) {
  grpc::Status large;
  do {
    if (absl::Status appended = upload.Append(chunk.data()); !appended.ok()) {
      return ToGrpcStatus(appended);
    }
  } while (reader->Read(&chunk) && (large = CheckRequestSize(chunk, kArtifactChunkBytes)).ok());
  return large;
}

// The job and attempt a session message speaks about.
std::pair<std::string, int> JobOf(const ocs::v1::WorkerMessage& message) {
  if (message.has_report()) return {message.report().job_id(), message.report().attempt()};
  if (message.has_progress()) return {message.progress().job_id(), message.progress().attempt()};
  return {message.finished().job_id(), message.finished().attempt()};
}

}  // namespace

absl::Status WorkerService::Handle(const std::string& worker_id,
                                   const ocs::v1::WorkerMessage& message) {
  if (message.has_report()) {
    auto report = ReportFrom(message.report());
    if (!report.ok()) return report.status();
    return runner_.Report(worker_id, *report);
  }
  if (message.has_progress()) {
    const ocs::v1::StepProgress& in = message.progress();
    if (absl::Status allowed = runner_.CheckRankZero(worker_id, in.job_id(), in.attempt());
        !allowed.ok()) {
      return allowed;
    }
    progress_.Set(in.job_id(), {in.epoch(), in.step(), in.steps()});
    return absl::OkStatus();
  }
  if (message.has_goodbye()) {
    // It goes into every affected job's history: a line, not a page.
    const std::string reason = common::OneLine(message.goodbye().reason(), 200);
    workers_.Unregister(worker_id);
    runner_.Disconnect(worker_id, absl::StrCat("left (", reason, ")"));
    common::LogInfo(absl::StrCat("worker ", worker_id, " left: ", reason));
    return absl::OkStatus();
  }
  if (message.has_finished()) {
    const ocs::v1::RankFinished& in = message.finished();
    return runner_.Finished(worker_id, in.job_id(), in.attempt(), in.rank(), OutcomeFrom(in));
  }
  return absl::InvalidArgumentError(
      "a session carries reports, progress, finishes and a goodbye after its hello");
}

grpc::Status WorkerService::Session(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<ocs::v1::CoordinatorMessage, ocs::v1::WorkerMessage>* stream) {
  if (grpc::Status denied = CheckWorker(*context); !denied.ok()) return denied;
  ocs::v1::WorkerMessage message;
  if (!stream->Read(&message) || !message.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a session starts with a hello");
  }
  const std::string worker_id = message.hello().worker_id();
  if (!workers_.Contains(worker_id)) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown worker \"", worker_id, "\": register first"));
  }
  WorkerSession session(stream);
  std::thread writer([&session] { session.WriteLoop(); });
  if (absl::Status connected =
          runner_.Connect(worker_id, &session, ClaimsFrom(message.hello(), session));
      !connected.ok()) {
    // Refused: the live session keeps its link, so this one must not Detach it.
    common::LogWarning(std::string(connected.message()));
    session.Close();
    writer.join();
    return ToGrpcStatus(connected);
  }
  grpc::Status ended = grpc::Status::OK;
  while (stream->Read(&message)) {
    // No worker sends this much: the session ends, its ranks may re-attach on a new one.
    if (ended = CheckRequestSize(message, kSessionMessageBytes); !ended.ok()) break;
    if (absl::Status status = Handle(worker_id, message); !status.ok()) {
      // A report that does not belong changes nothing; the rank that sent it is stopped, loudly.
      common::LogWarning(absl::StrCat("worker ", worker_id, ": ", status.message()),
                         {JobOf(message).first});
      const auto [job, attempt] = JobOf(message);
      session.Cancel(job, attempt, std::string(status.message()));
    }
  }
  runner_.Detach(worker_id);
  session.Close();
  writer.join();
  return ended;
}

grpc::Status WorkerService::UploadArtifact(grpc::ServerContext* context,
                                           grpc::ServerReader<ocs::v1::ArtifactChunk>* reader,
                                           ocs::v1::UploadArtifactResponse* response) {
  if (grpc::Status denied = CheckWorker(*context); !denied.ok()) return denied;
  ocs::v1::ArtifactChunk chunk;
  if (!reader->Read(&chunk)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an upload starts with its header");
  }
  grpc::Status large = CheckRequestSize(chunk, kArtifactChunkBytes);
  if (!large.ok()) return large;
  const std::string job_id = chunk.job_id(), name = chunk.name();
  if (!workers_.Contains(chunk.worker_id())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown worker \"", chunk.worker_id(), "\""));
  }
  if (absl::Status allowed = runner_.CheckRankZero(chunk.worker_id(), job_id, chunk.attempt());
      !allowed.ok()) {
    return ToGrpcStatus(allowed);
  }
  auto expected = ExpectedFrom(chunk);
  if (!expected.ok()) return ToGrpcStatus(expected.status());
  auto upload = artifacts_.Begin(job_id, name);
  if (!upload.ok()) return ToGrpcStatus(upload.status());
  if (grpc::Status received = Receive(reader, chunk, **upload); !received.ok()) return received;
  // The reads end the same way when the call is cancelled (the worker was killed, the link cut):
  // what arrived may be any part of the file. Dropping `upload` removes its temporary file.
  if (context->IsCancelled()) {
    common::LogWarning(absl::StrCat("upload of ", name, " cut off after ", (*upload)->size(),
                                    " bytes: nothing stored"),
                       {job_id});
    return grpc::Status(grpc::StatusCode::CANCELLED, "the upload was cancelled");
  }
  auto path = (*upload)->Commit(*expected);
  if (absl::IsDataLoss(path.status())) {
    const std::string why = absl::StrCat(name, ": ", path.status().message(), "; nothing stored");
    common::LogWarning(why, {job_id});
    return grpc::Status(grpc::StatusCode::DATA_LOSS, why);
  }
  if (!path.ok()) return ToGrpcStatus(path.status());
  common::CrashPoint(common::crash_point::kArtifactWritten);
  if (absl::Status recorded = runner_.RecordArtifact(job_id, {name, *path, (*upload)->size()});
      !recorded.ok()) {
    return ToGrpcStatus(recorded);
  }
  response->set_size_bytes((*upload)->size());
  common::LogInfo(absl::StrCat("stored ", name, " (", (*upload)->size(), " bytes)"), {job_id});
  return grpc::Status::OK;
}

}  // namespace ocs::server
