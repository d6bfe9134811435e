// ocs-worker: runs one rank of a pruning job. main only parses the command line and wires parts.
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/version.h"
#include "worker/train/torch_runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"ocs-worker: trains one rank of a one-cycle structured pruning job (LibTorch)."};
  app.set_version_flag("--version", [] {
    return std::string("ocs-worker ") + ocs::common::kVersion + " (api " +
           ocs::common::kApiVersion + "), " + ocs::worker::train::DescribeTorchRuntime();
  });
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);
  std::cout << app.help();
  return 0;
}
