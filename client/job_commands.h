// The read and control verbs of ocsctl on jobs and workers: list, describe, cancel, stability,
// masks, download, workers. Each prints a table by default and the API's messages with
// -o json|yaml; errors are one line on stderr; exit codes as in exit_codes.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ocs::v1 {
class Job;
}

namespace ocs::client {

struct ReadOptions {
  std::string coordinator;  // --coordinator, else $OCS_COORDINATOR, config, localhost:7070
  std::string output = "table";
  std::string job;  // the verbs that take one
};

struct ListOptions : ReadOptions {
  std::string state;                // pending | running | succeeded | failed | cancelled
  std::vector<std::string> labels;  // key=value, all must match
};

struct CancelOptions : ReadOptions {
  std::string reason;
};

struct MasksOptions : ReadOptions {
  std::optional<int> epoch;
  std::vector<int> diff;  // two epochs
};

struct DownloadOptions : ReadOptions {
  std::string dir = ".";
};

CLI::App* AddListCommand(CLI::App& app, ListOptions* options);
CLI::App* AddDescribeCommand(CLI::App& app, ReadOptions* options);
CLI::App* AddCancelCommand(CLI::App& app, CancelOptions* options);
CLI::App* AddStabilityCommand(CLI::App& app, ReadOptions* options);
CLI::App* AddMasksCommand(CLI::App& app, MasksOptions* options);
CLI::App* AddDownloadCommand(CLI::App& app, DownloadOptions* options);
CLI::App* AddWorkersCommand(CLI::App& app, ReadOptions* options);
CLI::App* AddHealthCommand(CLI::App& app, ReadOptions* options);

// The job's training.epochs, from its canonical spec (0 if it cannot be read).
int TotalEpochs(const ocs::v1::Job& job);

int RunList(const ListOptions& options);
int RunDescribe(const ReadOptions& options);
int RunCancel(const CancelOptions& options);
int RunStability(const ReadOptions& options);
int RunMasks(const MasksOptions& options);
int RunDownload(const DownloadOptions& options);
int RunWorkers(const ReadOptions& options);
// grpc.health.v1: exit 0 when the coordinator is serving (container health checks use it).
int RunHealth(const ReadOptions& options);

}  // namespace ocs::client
