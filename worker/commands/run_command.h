// `ocs-worker run JOB` trains one rank of a standalone one-cycle job (the stability rule applied
// by the worker itself); `ocs-worker launch JOB --nproc N` starts N local ranks of it over Gloo.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace ocs::worker::commands {

struct RunOptions {
  std::string job;
  std::string output;  // default: runs/<job name>
  bool resume = false;
  int world_size = 1;
  int rank = 0;
  std::string master = "127.0.0.1:29500";
  int threads = 0;  // intra-op threads; 0: all cores (divided among local ranks by launch)
  int stop_after_epoch = -1;
  bool quiet = false;
  bool no_prune = false;        // the unpruned baseline of the same job
  bool no_cuda_graphs = false;  // eager training steps on a GPU (for comparisons)
  bool form_group = false;      // a process group even for one rank (NCCL on a single GPU)
  int nproc = 2;                // launch only
};

std::pair<CLI::App*, CLI::App*> AddRunCommands(CLI::App& app, RunOptions* options);

int RunStandalone(const RunOptions& options);
int LaunchLocalRanks(const RunOptions& options, const std::string& self);

}  // namespace ocs::worker::commands
