#include "server/coordinator_server.h"

#include <chrono>

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "server/job_service.h"
#include "server/worker_service.h"

namespace ocs::server {

CoordinatorServer::CoordinatorServer(JobManager& jobs, WorkerRegistry& workers, JobRunner& runner,
                                     const ArtifactFiles& artifacts, ProgressBoard& progress)
    : job_service_(std::make_unique<JobService>(jobs, progress)),
      worker_service_(std::make_unique<WorkerService>(workers, runner, artifacts, progress)) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

absl::StatusOr<int> CoordinatorServer::Start(const std::string& address,
                                             Interceptors interceptors) {
  // The standard grpc.health.v1.Health service, for probes and load balancers.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(job_service_.get());
  builder.RegisterService(worker_service_.get());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " (address in use or not local?)"));
  }
  return port;
}

void CoordinatorServer::Shutdown() {
  // Calls in flight get a moment to finish, then are cancelled: a stuck client must not keep
  // the coordinator from stopping.
  constexpr auto kGrace = std::chrono::seconds(2);
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + kGrace);
}

void CoordinatorServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace ocs::server
