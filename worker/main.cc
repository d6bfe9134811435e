// ocs-worker: runs one rank of a pruning job. main only parses the command line and wires parts.
#include "common/cli_parse.h"
#include "common/version.h"
#include "worker/commands/model_command.h"
#include "worker/commands/run_command.h"
#include "worker/commands/serve_command.h"
#include "worker/train/torch_runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"ocs-worker: trains one rank of a one-cycle structured pruning job (LibTorch)."};
  app.set_version_flag("--version", [] {
    return std::string("ocs-worker ") + ocs::common::kVersion + " (api " +
           ocs::common::kApiVersion + "), " + ocs::worker::train::DescribeTorchRuntime();
  });
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success; 2 bad arguments or an invalid job (its errors are printed); 1 "
      "otherwise.");

  ocs::worker::commands::ModelOptions model;
  const auto model_commands = ocs::worker::commands::AddModelCommands(app, &model);
  ocs::worker::commands::RunOptions run;
  auto [run_command, launch_command] = ocs::worker::commands::AddRunCommands(app, &run);
  ocs::worker::commands::ServeOptions serve;
  CLI::App* serve_command = ocs::worker::commands::AddServeCommand(app, &serve);

  if (auto exit_code = ocs::common::ParseCommandLine(app, argc, argv)) return *exit_code;
  if (run_command->parsed()) return ocs::worker::commands::RunStandalone(run);
  if (serve_command->parsed()) return ocs::worker::commands::Serve(serve);
  if (launch_command->parsed())
    return ocs::worker::commands::LaunchLocalRanks(run, "/proc/self/exe");
  ocs::worker::train::ConfigureIntraOpThreads(0);
  if (model_commands.inspect->parsed()) return ocs::worker::commands::RunModelInspect(model);
  if (model_commands.search->parsed()) return ocs::worker::commands::RunModelSearch(model);
  if (model_commands.freeze->parsed()) return ocs::worker::commands::RunModelFreeze(model);
  return ocs::common::kExitUsage;
}
