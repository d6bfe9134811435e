// `ocs-worker model inspect|search|freeze`: a preflight and a serving step for users, a stable
// command-line contract.
//   inspect  FLOPs, parameters and the channel groups of a model
//   search   the sub-network at a FLOPs target on seeded random weights, and how long it took
//   freeze   a job's model.pt made ready for serving (BatchNorm folded), checked against it
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
  // freeze only
  std::string model_path;   // a model.pt (TorchScript)
  std::string frozen_path;  // default: beside it, model.frozen.pt
  std::string device = "cpu";
};

struct ModelCommands {
  CLI::App* inspect;
  CLI::App* search;
  CLI::App* freeze;
};

// Adds `model` with its subcommands.
ModelCommands AddModelCommands(CLI::App& app, ModelOptions* options);

int RunModelInspect(const ModelOptions& options);
int RunModelSearch(const ModelOptions& options);
int RunModelFreeze(const ModelOptions& options);

}  // namespace ocs::worker::commands
