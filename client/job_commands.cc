#include "client/job_commands.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/output.h"
#include "common/job_spec_yaml.h"
#include "common/mask.h"

namespace ocs::client {
namespace {

CLI::App* AddReadCommand(CLI::App& app, const std::string& name, const std::string& help,
                         ReadOptions* options, bool takes_job) {
  CLI::App* command = app.add_subcommand(name, help);
  if (takes_job) command->add_option("job", options->job, "Job id")->required();
  AddCoordinatorOption(command, &options->coordinator);
  AddOutputOption(command, &options->output);
  return command;
}

std::string Percent(double fraction) { return absl::StrFormat("%.2f%%", 100 * fraction); }

// The summary of a job's stored boundaries that list and describe show.
struct Progress {
  int epochs_done = 0;
  std::string phase = "-", j_bar = "-", flops_reduction = "-", accuracy = "-";
  std::optional<int> prune_epoch;
};

Progress Summarize(const ocs::v1::Job& job, const ocs::v1::GetStabilityResponse& stability) {
  Progress p;
  const auto& b = stability.boundaries();
  if (b.empty()) return p;
  const ocs::v1::EpochBoundary& last = b[b.size() - 1];
  p.epochs_done = job.state() == ocs::v1::JOB_STATE_SUCCEEDED ? TotalEpochs(job) : last.epoch();
  p.phase = last.phase();
  for (const auto& boundary : b) {
    if (boundary.has_stability()) p.j_bar = absl::StrFormat("%.4f", boundary.j_bar());
    if (boundary.prune()) p.prune_epoch = boundary.epoch();
  }
  if (b[0].flops() > 0) {
    p.flops_reduction = Percent(1.0 - static_cast<double>(last.flops()) / b[0].flops());
  }
  if (last.epoch() > 0) p.accuracy = Percent(last.test_accuracy());
  return p;
}

grpc::Status GetStability(Connection& c, const std::string& id,
                          ocs::v1::GetStabilityResponse* response) {
  ocs::v1::GetStabilityRequest request;
  request.set_id(id);
  grpc::ClientContext context;
  Connection::Prepare(context);
  return c.jobs().GetStability(&context, request, response);
}

grpc::Status GetJob(Connection& c, const std::string& id, ocs::v1::Job* job) {
  ocs::v1::GetJobRequest request;
  request.set_id(id);
  grpc::ClientContext context;
  Connection::Prepare(context);
  return c.jobs().GetJob(&context, request, job);
}

std::string Time(int64_t unix_ms) {
  const std::time_t seconds = unix_ms / 1000;
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", std::gmtime(&seconds));
  return text;
}

}  // namespace

int TotalEpochs(const ocs::v1::Job& job) {
  auto spec = common::ParseJobSpec(job.spec_yaml(), job.id());
  return spec.ok() ? spec->training.epochs : 0;
}

CLI::App* AddListCommand(CLI::App& app, ListOptions* options) {
  CLI::App* command = AddReadCommand(app, "list", "List jobs, newest first", options, false);
  command
      ->add_option("--state", options->state,
                   "Only jobs in this state (running: any of scheduled, dense, "
                   "sparsity_learning, pruned)")
      ->check(CLI::IsMember({"pending", "running", "scheduled", "dense", "sparsity_learning",
                             "pruned", "succeeded", "failed", "cancelled"}));
  command->add_option("-l,--label", options->labels, "Only jobs with this label (key=value)");
  return command;
}

int RunList(const ListOptions& options) {
  Connection c(options.coordinator);
  ocs::v1::ListJobsRequest request;
  if (!options.state.empty()) {
    ocs::v1::JobState state = ocs::v1::JOB_STATE_UNSPECIFIED;  // CLI11 checked the name
    std::string name = "JOB_STATE_" + options.state;
    std::transform(name.begin(), name.end(), name.begin(), ::toupper);
    ocs::v1::JobState_Parse(name, &state);
    request.set_state(state);
  }
  for (const std::string& label : options.labels) {
    const std::vector<std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      std::cerr << "error: --label " << label << ": expected key=value\n";
      return kExitInvalidInput;
    }
    (*request.mutable_label_selector())[kv[0]] = kv[1];
  }
  request.set_page_size(500);
  ocs::v1::ListJobsResponse all;
  do {
    ocs::v1::ListJobsResponse page;
    grpc::ClientContext context;
    Connection::Prepare(context);
    if (grpc::Status s = c.jobs().ListJobs(&context, request, &page); !s.ok()) return c.Fail(s);
    for (const auto& job : page.jobs()) *all.add_jobs() = job;
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  const OutputFormat format = ParseOutputFormat(options.output);
  if (format != OutputFormat::kTable) {
    PrintMessage(all, format);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const ocs::v1::Job& job : all.jobs()) {
    ocs::v1::GetStabilityResponse stability;
    if (grpc::Status s = GetStability(c, job.id(), &stability); !s.ok()) return c.Fail(s);
    const Progress p = Summarize(job, stability);
    rows.push_back({job.id(), StateName(job.state()), p.phase,
                    absl::StrCat(p.epochs_done, "/", TotalEpochs(job)), p.j_bar, p.flops_reduction,
                    p.accuracy, Age(job.create_time_unix_ms())});
  }
  PrintTable({"ID", "STATE", "PHASE", "EPOCH", "J̄", "FLOPS↓", "ACCURACY", "AGE"}, rows);
  return kExitOk;
}

CLI::App* AddDescribeCommand(CLI::App& app, ReadOptions* options) {
  return AddReadCommand(app, "describe",
                        "A job in full: state history, latest metrics, prune, artifacts, spec",
                        options, true);
}

int RunDescribe(const ReadOptions& options) {
  Connection c(options.coordinator);
  ocs::v1::Job job;
  if (grpc::Status s = GetJob(c, options.job, &job); !s.ok()) return c.Fail(s);
  const OutputFormat format = ParseOutputFormat(options.output);
  if (format != OutputFormat::kTable) {
    PrintMessage(job, format);
    return kExitOk;
  }
  ocs::v1::GetStabilityResponse stability;
  if (grpc::Status s = GetStability(c, options.job, &stability); !s.ok()) return c.Fail(s);
  const Progress p = Summarize(job, stability);
  std::cout << "Job:       " << job.id() << "\nState:     " << StateName(job.state())
            << (job.message().empty() ? "" : " (" + job.message() + ")")
            << "\nPhase:     " << p.phase << ", epoch " << p.epochs_done << "/" << TotalEpochs(job)
            << "\nRestarts:  " << job.restarts()
            << "\nCreated:   " << Time(job.create_time_unix_ms()) << " UTC ("
            << Age(job.create_time_unix_ms()) << " ago)\n";
  for (const auto& [key, value] : job.labels())
    std::cout << "Label:     " << key << "=" << value << "\n";
  std::cout << "\nHistory:\n";
  for (const auto& t : job.history()) {
    std::cout << "  " << Time(t.time_unix_ms()) << "  " << StateName(t.to())
              << (t.reason().empty() ? "" : "  " + t.reason()) << "\n";
  }
  std::string phase;
  for (const auto& b : stability.boundaries()) {
    if (b.phase() != phase) std::cout << "  epoch " << b.epoch() << "  phase " << b.phase() << "\n";
    phase = b.phase();
  }
  if (!stability.boundaries().empty()) {
    const auto& last = stability.boundaries(stability.boundaries_size() - 1);
    std::cout << "\nLatest metrics (epoch " << last.epoch() << "): train loss "
              << absl::StrFormat("%.4f", last.train_loss()) << ", train accuracy "
              << Percent(last.train_accuracy()) << ", test accuracy "
              << Percent(last.test_accuracy()) << ", J̄ " << p.j_bar << ", FLOPs "
              << absl::StrFormat("%.2f M", last.flops() / 1e6) << " (" << p.flops_reduction
              << " fewer)\n";
  }
  std::cout << "Pruned:    "
            << (p.prune_epoch ? absl::StrCat("at the boundary before epoch ", *p.prune_epoch)
                              : std::string("not yet"))
            << "\n\nArtifacts:\n";
  if (job.artifacts().empty()) std::cout << "  (none yet)\n";
  for (const auto& a : job.artifacts()) {
    std::cout << "  " << a.name() << "  " << a.size_bytes() << " bytes\n";
  }
  std::cout << "\nSpec:\n";
  for (absl::string_view line : absl::StrSplit(job.spec_yaml(), '\n')) {
    if (!line.empty()) std::cout << "  " << line << "\n";
  }
  return kExitOk;
}

CLI::App* AddCancelCommand(CLI::App& app, CancelOptions* options) {
  CLI::App* command = AddReadCommand(app, "cancel", "Cancel a job", options, true);
  command->add_option("--reason", options->reason, "Why (kept in the job's history)");
  return command;
}

int RunCancel(const CancelOptions& options) {
  Connection c(options.coordinator);
  ocs::v1::CancelJobRequest request;
  request.set_id(options.job);
  request.set_reason(options.reason.empty() ? "cancelled with ocsctl" : options.reason);
  ocs::v1::Job job;
  grpc::ClientContext context;
  Connection::Prepare(context);
  if (grpc::Status s = c.jobs().CancelJob(&context, request, &job); !s.ok()) return c.Fail(s);
  const OutputFormat format = ParseOutputFormat(options.output);
  if (format != OutputFormat::kTable) {
    PrintMessage(job, format);
  } else {
    std::cout << job.id() << ": " << StateName(job.state()) << "\n";
  }
  return kExitOk;
}

CLI::App* AddStabilityCommand(CLI::App& app, ReadOptions* options) {
  return AddReadCommand(app, "stability",
                        "The stability series: J and J̄ per epoch, with phase and metrics", options,
                        true);
}

int RunStability(const ReadOptions& options) {
  Connection c(options.coordinator);
  ocs::v1::GetStabilityResponse stability;
  if (grpc::Status s = GetStability(c, options.job, &stability); !s.ok()) return c.Fail(s);
  const OutputFormat format = ParseOutputFormat(options.output);
  if (format != OutputFormat::kTable) {
    PrintMessage(stability, format);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<double> j_bars;
  for (const auto& b : stability.boundaries()) {
    const std::string none = "-";
    rows.push_back({std::to_string(b.epoch()), b.phase(),
                    b.has_stability() ? absl::StrFormat("%.4f", b.j()) : none,
                    b.has_stability() ? absl::StrFormat("%.4f", b.j_bar()) : none,
                    absl::StrFormat("%.3g", b.lambda()),
                    b.epoch() > 0 ? absl::StrFormat("%.4f", b.train_loss()) : none,
                    b.epoch() > 0 ? Percent(b.test_accuracy()) : none,
                    absl::StrFormat("%.2fM", b.flops() / 1e6), b.prune() ? "prune" : "continue"});
    if (b.has_stability()) j_bars.push_back(b.j_bar());
  }
  PrintTable({"EPOCH", "PHASE", "J", "J̄", "λ", "TRAIN LOSS", "TEST ACC", "FLOPS", "VERDICT"}, rows);
  if (!j_bars.empty()) std::cout << "J̄ " << Sparkline(j_bars) << "\n";
  return kExitOk;
}

CLI::App* AddMasksCommand(CLI::App& app, MasksOptions* options) {
  CLI::App* command = AddReadCommand(
      app, "masks", "The sub-network masks: kept channels per group, or what changed", options,
      true);
  CLI::Option* epoch =
      command->add_option("--epoch", options->epoch, "Only this epoch's mask, group by group");
  command->add_option("--diff", options->diff, "Which channels changed between two epochs")
      ->expected(2)
      ->excludes(epoch);
  return command;
}

namespace {

// One epoch's mask, or all of them.
grpc::Status FetchMasks(Connection& c, const std::string& id, std::optional<int> epoch,
                        ocs::v1::GetMasksResponse* response) {
  ocs::v1::GetMasksRequest request;
  request.set_id(id);
  if (epoch) request.set_epoch(*epoch);
  grpc::ClientContext context;
  Connection::Prepare(context);
  return c.jobs().GetMasks(&context, request, response);
}

std::vector<int> Difference(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

int PrintDiff(Connection& c, const MasksOptions& options) {
  common::Mask masks[2];
  for (int i = 0; i < 2; ++i) {
    ocs::v1::GetMasksResponse response;
    if (grpc::Status rpc = FetchMasks(c, options.job, options.diff[i], &response); !rpc.ok()) {
      return c.Fail(rpc);
    }
    auto decoded = common::DecodeMask(response.masks(0).mask());
    if (!decoded.ok()) {
      std::cerr << "error: " << decoded.status().message() << "\n";
      return kExitFailure;
    }
    masks[i] = *decoded;
  }
  nlohmann::json diff = {{"job", options.job},
                         {"fromEpoch", options.diff[0]},
                         {"toEpoch", options.diff[1]},
                         {"groups", nlohmann::json::array()}};
  std::vector<std::vector<std::string>> rows;
  for (size_t g = 0; g < masks[0].groups.size() && g < masks[1].groups.size(); ++g) {
    const auto& from = masks[0].groups[g].kept;
    const auto& to = masks[1].groups[g].kept;
    const std::vector<int> dropped = Difference(from, to), added = Difference(to, from);
    diff["groups"].push_back({{"group", g},
                              {"size", masks[0].groups[g].size},
                              {"keptFrom", from.size()},
                              {"keptTo", to.size()},
                              {"dropped", dropped},
                              {"added", added}});
    if (dropped.empty() && added.empty()) continue;
    rows.push_back({std::to_string(g), std::to_string(from.size()), std::to_string(to.size()),
                    absl::StrJoin(dropped, ","), absl::StrJoin(added, ",")});
  }
  const OutputFormat format = ParseOutputFormat(options.output);
  if (format != OutputFormat::kTable) {
    PrintJson(diff.dump(2), format);
    return kExitOk;
  }
  std::cout << rows.size() << " of " << masks[0].groups.size() << " groups changed between epoch "
            << options.diff[0] << " and " << options.diff[1] << "\n";
  if (!rows.empty()) {
    PrintTable({"GROUP", absl::StrCat("KEPT@", options.diff[0]),
                absl::StrCat("KEPT@", options.diff[1]), "DROPPED", "ADDED"},
               rows);
  }
  return kExitOk;
}

}  // namespace

int RunMasks(const MasksOptions& options) {
  Connection c(options.coordinator);
  if (!options.diff.empty()) return PrintDiff(c, options);
  ocs::v1::GetMasksResponse response;
  if (grpc::Status rpc = FetchMasks(c, options.job, options.epoch, &response); !rpc.ok()) {
    return c.Fail(rpc);
  }
  const OutputFormat format = ParseOutputFormat(options.output);
  if (format != OutputFormat::kTable) {
    PrintMessage(response, format);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  if (options.epoch) {
    const auto& m = response.masks(0);
    for (int g = 0; g < m.kept_per_group_size(); ++g) {
      rows.push_back({std::to_string(g), std::to_string(m.group_sizes(g)),
                      std::to_string(m.kept_per_group(g))});
    }
    PrintTable({"GROUP", "CHANNELS", "KEPT"}, rows);
    return kExitOk;
  }
  for (const auto& m : response.masks()) {
    int kept = 0, total = 0;
    for (int g = 0; g < m.kept_per_group_size(); ++g) {
      kept += m.kept_per_group(g);
      total += m.group_sizes(g);
    }
    rows.push_back({std::to_string(m.epoch()), absl::StrCat(kept, "/", total),
                    absl::StrJoin(m.kept_per_group(), " ")});
  }
  PrintTable({"EPOCH", "KEPT CHANNELS", "KEPT PER GROUP"}, rows);
  return kExitOk;
}

CLI::App* AddDownloadCommand(CLI::App& app, DownloadOptions* options) {
  CLI::App* command =
      app.add_subcommand("download", "Download the pruned model (TorchScript) and its report");
  command->add_option("job", options->job, "Job id")->required();
  command->add_option("-o,--output-dir", options->dir, "Folder to write into (default: .)");
  AddCoordinatorOption(command, &options->coordinator);
  return command;
}

int RunDownload(const DownloadOptions& options) {
  Connection c(options.coordinator);
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    std::cerr << "error: cannot create " << options.dir << ": " << ec.message() << "\n";
    return kExitFailure;
  }
  for (const char* name : {"model.pt", "report.json"}) {
    const std::string path = options.dir + "/" + name, partial = path + ".part";
    ocs::v1::DownloadArtifactRequest request;
    request.set_id(options.job);
    request.set_name(name);
    grpc::ClientContext context;
    Connection::Prepare(context, 600);
    auto reader = c.jobs().DownloadArtifact(&context, request);
    std::ofstream out(partial, std::ios::binary);
    ocs::v1::ArtifactData chunk;
    int64_t size = 0;
    while (reader->Read(&chunk)) {
      out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      size += static_cast<int64_t>(chunk.data().size());
    }
    out.close();
    const grpc::Status status = reader->Finish();
    if (!status.ok() || !out) {
      std::filesystem::remove(partial, ec);  // never leave half a model behind
      if (!status.ok()) return c.Fail(status);
      std::cerr << "error: cannot write " << partial << "\n";
      return kExitFailure;
    }
    std::filesystem::rename(partial, path, ec);
    if (ec) {
      std::cerr << "error: cannot write " << path << ": " << ec.message() << "\n";
      std::filesystem::remove(partial, ec);
      return kExitFailure;
    }
    std::cout << path << " (" << size << " bytes)\n";
  }
  return kExitOk;
}

CLI::App* AddWorkersCommand(CLI::App& app, ReadOptions* options) {
  return AddReadCommand(app, "workers", "The registered workers: devices, slots, heartbeats",
                        options, false);
}

int RunWorkers(const ReadOptions& options) {
  Connection c(options.coordinator);
  ocs::v1::ListWorkersResponse response;
  grpc::ClientContext context;
  Connection::Prepare(context);
  if (grpc::Status s = c.workers().ListWorkers(&context, {}, &response); !s.ok()) {
    return c.Fail(s);
  }
  const OutputFormat format = ParseOutputFormat(options.output);
  if (format != OutputFormat::kTable) {
    PrintMessage(response, format);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : response.workers()) {
    rows.push_back({w.worker_id(), w.host(),
                    w.device() == ocs::v1::DEVICE_TYPE_CUDA ? "cuda" : "cpu",
                    std::to_string(w.slots()), std::to_string(w.free_slots()), w.version(),
                    Age(w.last_heartbeat_unix_ms()) + " ago", w.alive() ? "yes" : "no"});
  }
  PrintTable({"ID", "HOST", "DEVICE", "SLOTS", "FREE", "VERSION", "HEARTBEAT", "ALIVE"}, rows);
  return kExitOk;
}

CLI::App* AddHealthCommand(CLI::App& app, ReadOptions* options) {
  CLI::App* command =
      app.add_subcommand("health", "Whether the coordinator serves (grpc.health.v1): exit 0 if so");
  AddCoordinatorOption(command, &options->coordinator);
  return command;
}

int RunHealth(const ReadOptions& options) {
  Connection c(options.coordinator);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  Connection::Prepare(context, 5);
  if (grpc::Status s = c.health().Check(&context, {}, &response); !s.ok()) return c.Fail(s);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitFailure;
}

}  // namespace ocs::client
