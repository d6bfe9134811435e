#include "worker/commands/run_command.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "common/cli_parse.h"
#include "common/free_port.h"
#include "common/job_spec_warnings.h"
#include "common/job_spec_yaml.h"
#include "common/log.h"
#include "worker/train/collectives.h"
#include "worker/train/torch_runtime.h"
#include "worker/train/trainer.h"

namespace ocs::worker::commands {
namespace {

constexpr int kExitFailure = 1;

// Problems with the job or its inputs are the user's to fix (exit 2); the rest are failures.
int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      return common::kExitUsage;
    default:
      return kExitFailure;
  }
}

// A rank that stopped part-way. A peer that died leaves a job a resume can continue.
int ReportStopped(const absl::Status& status, const std::string& output) {
  std::cerr << "error: " << status.message() << "\n";
  if (absl::IsAborted(status)) {
    std::cerr << "(--resume continues from the newest checkpoint in " << output << ")\n";
  }
  return ExitCodeFor(status);
}

void PrintSummary(const train::RunSummary& s, const std::string& output, bool baseline) {
  std::printf("\nFLOPs %.3f M -> %.3f M (%.2f%% fewer), parameters %.3f M -> %.3f M\n",
              s.dense_flops / 1e6, s.final_flops / 1e6,
              100.0 * (1.0 - double(s.final_flops) / s.dense_flops), s.dense_params / 1e6,
              s.final_params / 1e6);
  if (s.prune_epoch) {
    std::printf(
        "pruned before epoch %d (index %d): test accuracy %.2f%% before, %.2f%% right after\n",
        *s.prune_epoch + 1, *s.prune_epoch, 100 * s.accuracy_before_prune.value_or(0),
        100 * s.accuracy_after_prune.value_or(0));
  } else if (baseline) {
    std::printf("the unpruned baseline (--no-prune)\n");
  } else {
    std::printf("not pruned: the run ended before the prune\n");
  }
  std::printf(
      "final test accuracy %.2f%%, wall time %.1f s\nmodel: %s/model.pt, report: %s/report.json\n",
      100 * s.final_accuracy, s.wall_seconds, output.c_str(), output.c_str());
}

// Trains this rank to the end of the job (or --stop-after-epoch).
int Train(const common::JobSpec& spec, const std::string& output, const RunOptions& options,
          train::Collectives& collectives) {
  train::TrainerOptions trainer_options;
  trainer_options.spec = spec;
  trainer_options.output_dir = output;
  trainer_options.resume = options.resume;
  trainer_options.stop_after_epoch = options.stop_after_epoch;
  trainer_options.dense_only = options.no_prune;
  trainer_options.cuda_graphs = !options.no_cuda_graphs;
  trainer_options.quiet = options.quiet || options.rank != 0;
  trainer_options.progress_bar = options.rank == 0 && isatty(STDERR_FILENO);
  auto trainer = train::Trainer::Create(trainer_options, collectives);
  if (!trainer.ok()) {
    std::cerr << "error: " << trainer.status().message() << "\n";
    return ExitCodeFor(trainer.status());
  }
  if (options.rank == 0 && !options.quiet) {
    std::printf("%s: %s on %s, %d rank(s), %s\n", spec.metadata.name.c_str(),
                spec.model.arch.c_str(), common::ToString(spec.data.dataset), options.world_size,
                train::DescribeTorchRuntime().c_str());
  }
  auto summary = (*trainer)->Run();
  if (!summary.ok()) return ReportStopped(summary.status(), output);
  if (options.rank == 0 && !options.quiet && summary->finished)
    PrintSummary(*summary, output, options.no_prune);
  return 0;
}

}  // namespace

std::pair<CLI::App*, CLI::App*> AddRunCommands(CLI::App& app, RunOptions* options) {
  auto add_common = [options](CLI::App* command) {
    command->add_option("job", options->job, "PruningJob YAML file")->required();
    command->add_option("-o,--output", options->output,
                        "Folder for checkpoints, model.pt and report.json (default: runs/NAME)");
    command->add_flag("--resume", options->resume, "Continue from the newest checkpoint");
    command->add_option("--stop-after-epoch", options->stop_after_epoch,
                        "Stop (with a checkpoint) after this epoch, as an interruption would");
    command->add_flag("--no-prune", options->no_prune,
                      "Train the unpruned baseline: same schedule, no masks, no prune");
    command->add_flag(
        "--no-cuda-graphs", options->no_cuda_graphs,
        "On a GPU, run every training step eagerly instead of replaying a CUDA graph");
  };
  CLI::App* run = app.add_subcommand("run", "Train one rank of a standalone pruning job");
  add_common(run);
  run->add_option("--world-size", options->world_size, "Ranks in the job")
      ->check(CLI::Range(1, 1024));
  run->add_option("--rank", options->rank, "This process's rank")->check(CLI::NonNegativeNumber);
  run->add_option("--master", options->master, "Rank 0's rendezvous address (host:port)")
      ->capture_default_str();
  run->add_flag("--form-group", options->form_group,
                "Form a c10d process group even for one rank (NCCL on a single GPU)");
  run->add_option("--threads", options->threads, "Intra-op threads (0: all cores)");
  run->add_flag("--quiet", options->quiet, "No per-epoch lines");
  CLI::App* launch =
      app.add_subcommand("launch", "Start all ranks of a standalone job on this host");
  add_common(launch);
  launch->add_option("--nproc", options->nproc, "Local ranks")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  return {run, launch};
}

int RunStandalone(const RunOptions& options) {
  std::vector<common::SpecError> errors;
  auto spec = common::LoadJobSpecFile(options.job, &errors);
  if (!spec.ok()) {
    std::cerr << "error: " << spec.status().message() << "\n";
    return common::kExitUsage;
  }
  const std::string output =
      options.output.empty() ? absl::StrCat("runs/", spec->metadata.name) : options.output;
  std::error_code ec;
  std::filesystem::create_directories(output, ec);
  if (ec) {
    std::cerr << "error: cannot create " << output << ": " << ec.message() << "\n";
    return kExitFailure;
  }
  common::SetLogPattern(
      absl::StrCat("[%H:%M:%S] [%l] [", spec->metadata.name, " rank ", options.rank, "] %v"));
  if (options.rank == 0) {
    for (const common::SpecError& warning : common::JobSpecWarnings(*spec)) {
      common::LogWarning(common::FormatSpecError(warning, options.job));
    }
  }
  train::ConfigureIntraOpThreads(options.threads);
  train::Rendezvous rendezvous{options.master, options.rank, options.world_size,
                               spec->resources.device};
  rendezvous.form_group_alone = options.form_group;
  auto collectives = train::JoinProcessGroup(rendezvous);
  if (!collectives.ok()) {
    std::cerr << "error: " << collectives.status().message() << "\n";
    return ExitCodeFor(collectives.status());
  }
  // The trainer turns exceptions into a status as it runs; one while it starts (building the model
  // on the device) stops this rank with the reason too, instead of aborting.
  try {
    return Train(*spec, output, options, **collectives);
  } catch (const std::exception& e) {
    return ReportStopped(train::TrainingStopped(e, *spec), output);
  }
}

int LaunchLocalRanks(const RunOptions& options, const std::string& self) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Closing the probe leaves the port free for rank 0's store a moment later.
  auto port = common::PickFreeLoopbackPort();
  if (!port.ok()) {
    std::cerr << "error: " << port.status().message() << "\n";
    return kExitFailure;
  }
  const std::string master = absl::StrCat("127.0.0.1:", *port);
  std::vector<pid_t> ranks;
  for (int rank = 0; rank < options.nproc; ++rank) {
    std::vector<std::string> args = {self,
                                     "run",
                                     options.job,
                                     "--world-size",
                                     std::to_string(options.nproc),
                                     "--rank",
                                     std::to_string(rank),
                                     "--master",
                                     master,
                                     "--threads",
                                     std::to_string(std::max(1, cores / options.nproc))};
    if (!options.output.empty()) args.insert(args.end(), {"--output", options.output});
    if (options.resume) args.push_back("--resume");
    if (options.no_prune) args.push_back("--no-prune");
    if (options.no_cuda_graphs) args.push_back("--no-cuda-graphs");
    if (options.stop_after_epoch >= 0) {
      args.insert(args.end(), {"--stop-after-epoch", std::to_string(options.stop_after_epoch)});
    }
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(self.c_str(), argv.data());
      _exit(127);
    }
    ranks.push_back(pid);
  }
  // The first rank to fail takes the others down: a rank alone would wait for its peers forever.
  int result = 0;
  for (size_t left = ranks.size(); left > 0; --left) {
    int status = 0;
    const pid_t pid = wait(&status);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
    if (code != 0 && result == 0) {
      result = code;
      for (pid_t other : ranks) {
        if (other != pid) kill(other, SIGTERM);
      }
    }
  }
  return result;
}

}  // namespace ocs::worker::commands
