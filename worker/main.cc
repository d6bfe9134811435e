// ocs-worker: runs one rank of a pruning job. main only parses the command line and wires parts.
#include <iostream>

#include "common/cli_parse.h"
#include "common/version.h"
#include "worker/train/torch_runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"ocs-worker: trains one rank of a one-cycle structured pruning job (LibTorch)."};
  app.set_version_flag("--version", [] {
    return std::string("ocs-worker ") + ocs::common::kVersion + " (api " +
           ocs::common::kApiVersion + "), " + ocs::worker::train::DescribeTorchRuntime();
  });
  app.require_subcommand(0, 1);
  if (auto exit_code = ocs::common::ParseCommandLine(app, argc, argv)) return *exit_code;
  std::cout << app.help();
  return 0;
}
