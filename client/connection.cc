#include "client/connection.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/str_join.h"
#include "client/exit_codes.h"
#include "common/suggest.h"
#include "proto/transport_security.h"

namespace ocs::client {
namespace {

SecurityFlags g_security_flags;

// The settings the user's config file may hold.
const std::vector<std::string> kConfigKeys = {"coordinator", "caCert", "tokenFile"};

std::string UserConfigPath() {
  const char* home = std::getenv("HOME");
  const char* config_home = std::getenv("XDG_CONFIG_HOME");
  if (config_home && *config_home) return std::string(config_home) + "/ocs/config.yaml";
  return home ? std::string(home) + "/.config/ocs/config.yaml" : "";
}

// One setting of the file, or nothing; what is wrong with it goes to stderr.
std::optional<std::string> ReadSetting(const std::string& path, const YAML::Node& key,
                                       const YAML::Node& value) {
  if (!key.IsScalar()) {
    std::cerr << "warning: ignoring a setting of " << path << " whose name is not a string\n";
    return std::nullopt;
  }
  const std::string& name = key.Scalar();
  if (std::find(kConfigKeys.begin(), kConfigKeys.end(), name) == kConfigKeys.end()) {
    const auto guess = common::ClosestMatch(name, kConfigKeys);
    std::cerr << "warning: ignoring \"" << name << "\" in " << path << ": not a setting"
              << (guess ? " (did you mean \"" + *guess + "\"?)" : "") << "; one of "
              << absl::StrJoin(kConfigKeys, ", ") << "\n";
    return std::nullopt;
  }
  if (!value || value.IsNull()) return std::nullopt;  // `key:` with nothing after it is unset
  if (value.IsScalar()) return value.Scalar();
  std::cerr << "warning: ignoring " << name << " in " << path << ": not a single value\n";
  return std::nullopt;
}

// The user's config file (~/.config/ocs/config.yaml), read once. A broken file or setting is
// named on stderr, once, and otherwise ignored: ocsctl still works from flags and environment.
std::map<std::string, std::string> LoadUserConfig() {
  std::map<std::string, std::string> settings;
  const std::string path = UserConfigPath();
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return settings;
  try {
    const YAML::Node config = YAML::LoadFile(path);
    if (config.IsNull()) return settings;  // an empty file
    if (!config.IsMap()) {
      std::cerr << "warning: ignoring " << path << ": not a mapping of settings ("
                << absl::StrJoin(kConfigKeys, ", ") << ")\n";
      return settings;
    }
    for (const auto& entry : config) {
      if (auto value = ReadSetting(path, entry.first, entry.second)) {
        settings[entry.first.Scalar()] = *value;
      }
    }
  } catch (const YAML::Exception& e) {
    std::cerr << "warning: ignoring " << path << ": " << e.what() << "\n";
  }
  return settings;
}

// A setting of the user's config file; empty when absent.
std::string Configured(const std::string& key) {
  static const std::map<std::string, std::string> settings = LoadUserConfig();
  const auto it = settings.find(key);
  return it == settings.end() ? "" : it->second;
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

void AddCoordinatorOption(CLI::App* command, std::string* coordinator) {
  command->add_option("--coordinator", *coordinator,
                      "Coordinator address (default: $OCS_COORDINATOR, then `coordinator:` in "
                      "~/.config/ocs/config.yaml, then localhost:7070)");
}

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
