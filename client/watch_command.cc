#include "client/watch_command.h"

#include <unistd.h>

#include <iostream>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/exit_codes.h"
#include "client/output.h"

namespace ocs::client {
namespace {

// A 20-cell bar of `done` out of `total`.
std::string Bar(int done, int total) {
  constexpr int kWidth = 20;
  const int filled = total > 0 ? done * kWidth / total : 0;
  std::string bar = "[";
  for (int i = 0; i < kWidth; ++i) bar += i < filled ? "█" : "░";
  return bar + "] ";
}

std::string BoundaryLine(const ocs::v1::EpochBoundary& b, int total,
                         const std::vector<double>& j_bars, bool terminal) {
  std::string line = terminal ? Bar(b.epoch(), total) : "";
  absl::StrAppend(&line, "epoch ", b.epoch(), "/", total, "  ", b.phase());
  if (b.epoch() > 0) {
    absl::StrAppend(&line, absl::StrFormat("  loss %.4f  test %.2f%%", b.train_loss(),
                                           100 * b.test_accuracy()));
  }
  if (b.has_stability()) {
    absl::StrAppend(&line, absl::StrFormat("  J̄ %.4f ", b.j_bar()), Sparkline(j_bars));
  }
  absl::StrAppend(&line, absl::StrFormat("  FLOPs %.2fM", b.flops() / 1e6));
  if (b.prune()) absl::StrAppend(&line, "  -> pruned");
  return line;
}

}  // namespace

CLI::App* AddWatchCommand(CLI::App& app, ReadOptions* options) {
  CLI::App* command = app.add_subcommand("watch", "Follow a job's progress until it ends");
  command->add_option("job", options->job, "Job id")->required();
  AddCoordinatorOption(command, &options->coordinator);
  AddOutputOption(command, &options->output);
  return command;
}

int RunWatch(const ReadOptions& options) {
  Connection connection(options.coordinator);
  return FollowJob(connection, options.job, options.output);
}

int FollowJob(Connection& c, const std::string& id, const std::string& output) {
  const OutputFormat format = ParseOutputFormat(output);
  const bool terminal = format == OutputFormat::kTable && isatty(STDOUT_FILENO);
  int total = 0;
  {
    ocs::v1::GetJobRequest request;
    request.set_id(id);
    ocs::v1::Job job;
    grpc::ClientContext context;
    Connection::Prepare(context);
    if (grpc::Status s = c.jobs().GetJob(&context, request, &job); !s.ok()) return c.Fail(s);
    total = TotalEpochs(job);
  }
  ocs::v1::WatchJobRequest request;
  request.set_id(id);
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  auto reader = c.jobs().WatchJob(&context, request);
  ocs::v1::JobEvent event;
  ocs::v1::JobState last = ocs::v1::JOB_STATE_UNSPECIFIED;
  std::vector<double> j_bars;
  while (reader->Read(&event)) {
    if (event.has_transition()) last = event.transition().to();
    if (event.has_boundary() && event.boundary().has_stability()) {
      j_bars.push_back(event.boundary().j_bar());
    }
    if (format == OutputFormat::kJson) {
      std::string line;  // JSON Lines: one event per line
      (void)google::protobuf::util::MessageToJsonString(event, &line);
      std::cout << line << std::endl;
    } else if (format == OutputFormat::kYaml) {
      std::cout << "---\n";
      PrintMessage(event, format);
    } else if (event.has_progress()) {
      if (terminal) {  // redrawn in place; plain output gets boundaries only
        const auto& p = event.progress();
        std::cout << "\r" << Bar(static_cast<int>(p.step()), static_cast<int>(p.steps()))
                  << "epoch " << p.epoch() + 1 << "/" << total << "  step " << p.step() << "/"
                  << p.steps() << "\x1b[K" << std::flush;
      }
    } else if (event.has_transition()) {
      if (terminal) std::cout << "\r\x1b[K";
      const auto& t = event.transition();
      std::cout << id << ": " << StateName(t.to())
                << (t.reason().empty() ? "" : " (" + t.reason() + ")") << std::endl;
    } else {
      if (terminal) std::cout << "\r\x1b[K";
      std::cout << BoundaryLine(event.boundary(), total, j_bars, terminal) << std::endl;
    }
  }
  if (grpc::Status s = reader->Finish(); !s.ok()) return c.Fail(s);
  return last == ocs::v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitFailure;
}

}  // namespace ocs::client
