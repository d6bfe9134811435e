// `ocs-worker model inspect|search`: a preflight for users, a stable command-line contract.
//   inspect  FLOPs, parameters and the channel groups of a model
//   search   the sub-network at a FLOPs target on seeded random weights, and how long it took
// Exit status: 0 success; 2 bad arguments or an invalid job (the job-spec errors are printed);
// 1 otherwise (e.g. an unreachable target).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ocs::worker::commands {

struct ModelOptions {
  std::string job;  // a job spec, or:
  std::string arch;
  int num_classes = 10;
  std::vector<int> input = {3, 32, 32};
  bool json = false;
  // search only
  double target = 0;  // 0: the job's target
  uint64_t seed = 1;
};

// Adds `model` with its `inspect` and `search` subcommands; returns the two subcommands.
std::pair<CLI::App*, CLI::App*> AddModelCommands(CLI::App& app, ModelOptions* options);

int RunModelInspect(const ModelOptions& options);
int RunModelSearch(const ModelOptions& options);

}  // namespace ocs::worker::commands
