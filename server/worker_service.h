// The gRPC adapter of the Worker API: translates messages and calls the WorkerRegistry.
#pragma once

#include "ocs/v1/worker_service.grpc.pb.h"
#include "proto/transport_security.h"
#include "server/artifact_files.h"
#include "server/job_runner.h"
#include "server/progress_board.h"
#include "server/worker_registry.h"

namespace ocs::server {

class WorkerService final : public ocs::v1::WorkerService::Service {
 public:
  // `require_certificates`: workers must present a verified client certificate (mutual TLS);
  // `tokens` guard ListWorkers, the one call people make.
  WorkerService(WorkerRegistry& workers, JobRunner& runner, const ArtifactFiles& artifacts,
                ProgressBoard& progress, api::TokenAuthenticator tokens, bool require_certificates)
      : workers_(workers),
        runner_(runner),
        artifacts_(artifacts),
        progress_(progress),
        tokens_(std::move(tokens)),
        require_certificates_(require_certificates) {}

  grpc::Status RegisterWorker(grpc::ServerContext* context,
                              const ocs::v1::RegisterWorkerRequest* request,
                              ocs::v1::RegisterWorkerResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const ocs::v1::HeartbeatRequest* request,
                         ocs::v1::HeartbeatResponse* response) override;
  grpc::Status ListWorkers(grpc::ServerContext* context, const ocs::v1::ListWorkersRequest* request,
                           ocs::v1::ListWorkersResponse* response) override;
  grpc::Status Session(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<ocs::v1::CoordinatorMessage,
                                                ocs::v1::WorkerMessage>* stream) override;
  grpc::Status UploadArtifact(grpc::ServerContext* context,
                              grpc::ServerReader<ocs::v1::ArtifactChunk>* reader,
                              ocs::v1::UploadArtifactResponse* response) override;

 private:
  absl::Status Handle(const std::string& worker_id, const ocs::v1::WorkerMessage& message);
  grpc::Status CheckWorker(const grpc::ServerContext& context) const {
    return require_certificates_ ? api::RequireClientCertificate(context) : grpc::Status::OK;
  }

  WorkerRegistry& workers_;
  JobRunner& runner_;
  const ArtifactFiles& artifacts_;
  ProgressBoard& progress_;
  const api::TokenAuthenticator tokens_;
  const bool require_certificates_;
};

}  // namespace ocs::server
