// `ocsctl submit FILE [--follow]`: validate locally, submit, print the job id; with --follow, wait
// for the end (exit 0 on success, 1 on failure or cancellation).
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace ocs::client {

struct SubmitOptions {
  std::string file;
  std::string coordinator;  // --coordinator, else $OCS_COORDINATOR, else localhost:7070
  bool follow = false;
};

CLI::App* AddSubmitCommand(CLI::App& app, SubmitOptions* options);
int RunSubmit(const SubmitOptions& options);

// The coordinator address a command should use.
std::string ResolveCoordinator(const std::string& flag);

}  // namespace ocs::client
