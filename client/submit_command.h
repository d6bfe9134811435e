// `ocsctl submit FILE [--follow]`: validate locally, submit, print the job id; with --follow,
// stream its progress as `watch` does until the end (exit 0 on success, 1 on failure or
// cancellation).
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

}  // namespace ocs::client
