#include "client/connection.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "client/exit_codes.h"
#include "proto/transport_security.h"

namespace ocs::client {
namespace {

SecurityFlags g_security_flags;

// A key of the user's config file (~/.config/ocs/config.yaml); empty when absent (a broken file
// is named on stderr and otherwise ignored).
std::string Configured(const char* key) {
  const char* home = std::getenv("HOME");
  const char* config_home = std::getenv("XDG_CONFIG_HOME");
  if (!home && !config_home) return "";
  const std::string path =
      std::string(config_home && *config_home ? config_home : std::string(home) + "/.config") +
      "/ocs/config.yaml";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return "";
  try {
    const YAML::Node config = YAML::LoadFile(path);
    const YAML::Node value = config.IsMap() ? config[key] : YAML::Node();
    if (!value || value.IsNull()) return "";  // `key:` with nothing after it is unset
    if (value.IsScalar()) return value.Scalar();
    std::cerr << "warning: ignoring " << key << " in " << path << ": not a single value\n";
  } catch (const YAML::Exception& e) {
    std::cerr << "warning: ignoring " << path << ": " << e.what() << "\n";
  }
  return "";
}

// The flag, else the environment variable, else the config file's key.
std::string Resolve(const std::string& flag, const char* env, const char* key) {
  if (!flag.empty()) return flag;
  if (const char* value = std::getenv(env); value && *value) return value;
  return Configured(key);
}

// TLS and the token as resolved; a broken setting ends ocsctl with a clear message (exit 2).
std::shared_ptr<grpc::ChannelCredentials> Credentials() {
  const std::string ca = Resolve(g_security_flags.ca_cert, "OCS_CA_CERT", "caCert");
  const std::string token_file =
      Resolve(g_security_flags.token_file, "OCS_TOKEN_FILE", "tokenFile");
  std::string token;
  if (!token_file.empty()) {
    auto read = api::ReadSecretFile(token_file, "token file");
    if (!read.ok()) {
      std::cerr << "error: " << read.status().message() << "\n";
      std::exit(kExitInvalidInput);
    }
    token = *read;
  }
  auto credentials = api::MakeChannelCredentials({ca, "", ""}, token);
  if (!credentials.ok()) {
    std::cerr << "error: " << credentials.status().message() << "\n";
    std::exit(kExitInvalidInput);
  }
  return *credentials;
}

}  // namespace

std::string ResolveCoordinator(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("OCS_COORDINATOR"); env && *env) return env;
  if (std::string configured = Configured("coordinator"); !configured.empty()) return configured;
  return "localhost:7070";
}

void SetSecurityFlags(SecurityFlags flags) { g_security_flags = std::move(flags); }

Connection::Connection(const std::string& coordinator_flag)
    : address_(ResolveCoordinator(coordinator_flag)) {
  auto channel = grpc::CreateChannel(address_, Credentials());
  jobs_ = ocs::v1::JobService::NewStub(channel);
  workers_ = ocs::v1::WorkerService::NewStub(channel);
  health_ = grpc::health::v1::Health::NewStub(channel);
}

void Connection::Prepare(grpc::ClientContext& context, int timeout_seconds) {
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_seconds));
}

int Connection::Fail(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    std::cerr << "error: cannot reach the coordinator at " << address_ << " ("
              << status.error_message() << ")\n";
  } else if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    std::cerr << "error: " << address_
              << " does not offer this call (UNIMPLEMENTED): is it the coordinator's API port?\n";
  } else if (status.error_message().empty()) {
    std::cerr << "error: the call failed with gRPC status " << status.error_code() << "\n";
  } else {
    std::cerr << "error: " << status.error_message() << "\n";
  }
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? kExitInvalidInput
                                                                   : kExitFailure;
}

}  // namespace ocs::client
