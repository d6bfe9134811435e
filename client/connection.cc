#include "client/connection.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "client/exit_codes.h"

namespace ocs::client {
namespace {

// `coordinator:` from the user's config file; empty when there is none (a broken file is named
// on stderr and otherwise ignored).
std::string ConfiguredCoordinator() {
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
    if (config["coordinator"]) return config["coordinator"].as<std::string>();
  } catch (const YAML::Exception& e) {
    std::cerr << "warning: ignoring " << path << ": " << e.what() << "\n";
  }
  return "";
}

}  // namespace

std::string ResolveCoordinator(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("OCS_COORDINATOR"); env && *env) return env;
  if (std::string configured = ConfiguredCoordinator(); !configured.empty()) return configured;
  return "localhost:7070";
}

Connection::Connection(const std::string& coordinator_flag)
    : address_(ResolveCoordinator(coordinator_flag)) {
  auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  jobs_ = ocs::v1::JobService::NewStub(channel);
  workers_ = ocs::v1::WorkerService::NewStub(channel);
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
  } else {
    std::cerr << "error: " << status.error_message() << "\n";
  }
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? kExitInvalidInput
                                                                   : kExitFailure;
}

}  // namespace ocs::client
