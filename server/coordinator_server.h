// The coordinator's gRPC server: owns the services and their listening socket.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

#include "absl/status/statusor.h"

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

class CoordinatorServer {
 public:
  CoordinatorServer(JobManager& jobs, WorkerRegistry& workers, JobRunner& runner,
                    const ArtifactFiles& artifacts, ProgressBoard& progress);
  ~CoordinatorServer();

  using Interceptors =
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>;
  // Binds `address` ("host:port"; port 0 picks a free one) and starts serving, every call passing
  // through `interceptors` (metrics). Returns the port.
  absl::StatusOr<int> Start(const std::string& address, Interceptors interceptors = {});
  // Stops accepting calls and waits for the ones in flight.
  void Shutdown();
  // Blocks until Shutdown() was called.
  void Wait();

 private:
  std::unique_ptr<JobService> job_service_;
  std::unique_ptr<WorkerService> worker_service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace ocs::server
