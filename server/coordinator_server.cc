#include "server/coordinator_server.h"

#include <chrono>

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/job_service.h"
#include "server/worker_service.h"

namespace ocs::server {

CoordinatorServer::CoordinatorServer(JobManager& jobs, WorkerRegistry& workers, JobRunner& runner,
                                     const ArtifactFiles& artifacts, ProgressBoard& progress,
                                     ServerSecurity security)
    : job_service_(std::make_unique<JobService>(jobs, progress, security.tokens)),
      worker_service_(std::make_unique<WorkerService>(workers, runner, artifacts, progress,
                                                      security.tokens,
                                                      security.require_worker_certificates)),
      credentials_(security.credentials ? security.credentials : grpc::InsecureServerCredentials()),
      tls_(security.credentials != nullptr),
      client_ca_(security.require_worker_certificates) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

namespace {

// Whether a plaintext server can bind `address` now.
bool CanListen(const std::string& address) {
  grpc::health::v1::Health::Service nothing;  // a server needs a service to start
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.RegisterService(&nothing);
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> trial = builder.BuildAndStart();
  if (trial) trial->Shutdown();
  return trial && port != 0;
}

}  // namespace

absl::Status CoordinatorServer::ListenFailure(const std::string& address) const {
  // gRPC says why a server did not start only in its own log. With TLS, a plaintext trial on the
  // same address tells a certificate that does not load from an address that cannot be had.
  if (tls_ && CanListen(address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert and --tls-key do not load as a certificate and its private key (a damaged "
        "file, or a key of another certificate)",
        client_ca_ ? ", or --tls-client-ca does not load" : ""));
  }
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", address, " (address in use or not local?)"));
}

absl::StatusOr<int> CoordinatorServer::Start(const std::string& address,
                                             Interceptors interceptors) {
  // The standard grpc.health.v1.Health service, for probes and load balancers.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, credentials_, &port);
  builder.RegisterService(job_service_.get());
  builder.RegisterService(worker_service_.get());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  // No request needs more: specs are at most 1 MiB, artifacts come in 1 MiB chunks, masks are
  // kilobytes. Larger ones get RESOURCE_EXHAUSTED before any code of ours sees them.
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return ListenFailure(address);
  }
  return port;
}

// The health port's one service: the coordinator serves as long as this process does.
class CoordinatorServer::HealthOnly final : public grpc::health::v1::Health::Service {
  grpc::Status Check(grpc::ServerContext* /*context*/,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override {
    const std::string& service = request->service();
    if (!service.empty() && service != "ocs.v1.JobService" && service != "ocs.v1.WorkerService") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service " + service);
    }
    response->set_status(grpc::health::v1::HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
};

absl::StatusOr<int> CoordinatorServer::StartHealthPort(const std::string& address) {
  health_service_ = std::make_unique<HealthOnly>();
  grpc::ServerBuilder builder;
  // Ours instead of gRPC's default one, which cannot stand alone on a server.
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(health_service_.get());
  health_server_ = builder.BuildAndStart();
  if (!health_server_ || port == 0) {
    health_server_.reset();
    return absl::UnavailableError(absl::StrCat("health port: cannot listen on ", address));
  }
  return port;
}

void CoordinatorServer::Shutdown() {
  // Calls in flight get a moment to finish, then are cancelled: a stuck client must not keep
  // the coordinator from stopping.
  constexpr auto kGrace = std::chrono::seconds(2);
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + kGrace);
  if (health_server_) health_server_->Shutdown(std::chrono::system_clock::now() + kGrace);
}

void CoordinatorServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace ocs::server
