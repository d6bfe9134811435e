// The coordinator's gRPC server: owns the services and their listening socket.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

#include "absl/status/statusor.h"
#include "proto/transport_security.h"

namespace grpc {
class Server;
}

namespace ocs::server {

class ArtifactFiles;
class JobManager;
class JobRunner;
class JobService;
class ProgressBoard;
class WorkerRegistry;
class WorkerService;

// Who may call: TLS (or plaintext for a local run), the job API's tokens, and whether workers
// must present client certificates.
struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;  // null: plaintext
  api::TokenAuthenticator tokens;
  bool require_worker_certificates = false;
};

class CoordinatorServer {
 public:
  static constexpr int kMaxRequestBytes = 4 << 20;
  CoordinatorServer(JobManager& jobs, WorkerRegistry& workers, JobRunner& runner,
                    const ArtifactFiles& artifacts, ProgressBoard& progress,
                    ServerSecurity security = {});
  ~CoordinatorServer();

  using Interceptors =
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>;
  // Binds `address` ("host:port"; port 0 picks a free one) and starts serving, every call passing
  // through `interceptors` (metrics). Returns the port.
  absl::StatusOr<int> Start(const std::string& address, Interceptors interceptors = {});
  // A second, plaintext port that serves only grpc.health.v1: Kubernetes' native gRPC probes
  // cannot speak TLS. Returns the port.
  absl::StatusOr<int> StartHealthPort(const std::string& address);
  // Stops accepting calls and waits for the ones in flight.
  void Shutdown();
  // Blocks until Shutdown() was called.
  void Wait();

 private:
  std::unique_ptr<JobService> job_service_;
  std::unique_ptr<WorkerService> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  class HealthOnly;
  std::unique_ptr<HealthOnly> health_service_;
  std::unique_ptr<grpc::Server> health_server_;
  // Why Start could not serve at `address`: InvalidArgument for TLS files that do not load,
  // Unavailable for the address.
  absl::Status ListenFailure(const std::string& address) const;

  std::shared_ptr<grpc::ServerCredentials> credentials_;
  bool tls_ = false;
  bool client_ca_ = false;  // --tls-client-ca was given
};

}  // namespace ocs::server
