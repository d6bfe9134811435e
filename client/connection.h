// How every ocsctl verb reaches the coordinator: the address (flag, then $OCS_COORDINATOR, then
// ~/.config/ocs/config.yaml's `coordinator:`, then localhost:7070), the stubs, and the one-line
// error and exit code of a failed call.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "ocs/v1/worker_service.grpc.pb.h"

namespace CLI {
class App;
}  // namespace CLI

namespace ocs::client {

// Every verb's --coordinator, with where the address comes from when it is not given.
void AddCoordinatorOption(CLI::App* command, std::string* coordinator);
// The coordinator address a command should use, given its --coordinator flag.
std::string ResolveCoordinator(const std::string& flag);

// ocsctl's global --ca-cert and --token-file. Each falls back to $OCS_CA_CERT / $OCS_TOKEN_FILE,
// then to the config file's `caCert:` / `tokenFile:`; none at all means plaintext, no token.
struct SecurityFlags {
  std::string ca_cert, token_file;
};
void SetSecurityFlags(SecurityFlags flags);

class Connection {
 public:
  explicit Connection(const std::string& coordinator_flag);
  const std::string& address() const { return address_; }
  ocs::v1::JobService::Stub& jobs() { return *jobs_; }
  ocs::v1::WorkerService::Stub& workers() { return *workers_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }

  // A context for one call: waits a few seconds for a coordinator that is starting up.
  static void Prepare(grpc::ClientContext& context, int timeout_seconds = 10);
  // Prints one line on stderr for a failed call and returns the exit code (1; 2 for a request
  // the server called invalid).
  int Fail(const grpc::Status& status) const;

 private:
  std::string address_;
  std::unique_ptr<ocs::v1::JobService::Stub> jobs_;
  std::unique_ptr<ocs::v1::WorkerService::Stub> workers_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace ocs::client
