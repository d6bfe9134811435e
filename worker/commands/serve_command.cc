#include "worker/commands/serve_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/cli_parse.h"
#include "common/job_spec_yaml.h"
#include "common/log.h"
#include "common/shutdown_signals.h"
#include "worker/agent/agent_decision_source.h"
#include "worker/agent/coordinator_session.h"
#include "worker/agent/worker_metrics.h"
#include "worker/commands/rank_stop.h"
#include "worker/train/collectives.h"
#include "worker/train/torch_runtime.h"
#include "worker/train/trainer.h"

namespace ocs::worker::commands {
namespace {

// What every rank of this worker shares.
struct Worker {
  agent::CoordinatorSession& session;
  const ServeOptions& options;
  agent::WorkerMetrics* metrics;  // null when metrics are off
  std::atomic<int>& running_ranks;
};

// Trains one assigned rank; `fail` reports a problem to the coordinator.
void TrainRank(const Worker& worker, const agent::Assignment& assignment,
               const common::JobSpec& spec, const agent::RankLabels& labels,
               const std::function<void(absl::Status)>& fail) {
  agent::CoordinatorSession& session = worker.session;
  auto collectives = train::JoinProcessGroup(
      {assignment.master, assignment.rank, assignment.world_size, spec.resources.device});
  if (!collectives.ok()) return fail(collectives.status());
  train::TrainerOptions trainer_options;
  trainer_options.spec = spec;
  trainer_options.output_dir = absl::StrCat(worker.options.work_dir, "/", assignment.job_id);
  trainer_options.quiet = true;
  trainer_options.resume = assignment.resume;
  trainer_options.stop_requested = [&session, &assignment] {
    return session.ShouldStop(assignment);
  };
  trainer_options.on_step = [&, last_step = std::chrono::steady_clock::time_point(),
                             last_progress = std::chrono::steady_clock::time_point()](
                                const train::StepDone& done) mutable {
    const auto now = std::chrono::steady_clock::now();
    if (worker.metrics) {
      // Timed step to step; an epoch's first step would also count the evaluation and boundary
      // before it.
      std::optional<double> step_seconds;
      if (done.step > 1) step_seconds = std::chrono::duration<double>(now - last_step).count();
      worker.metrics->StepDone(labels, done.images, step_seconds, done.allreduce_s);
    }
    last_step = now;
    // Rank 0 tells the coordinator a few times a second at most: enough for a progress bar.
    if (assignment.rank != 0) return;
    if (done.step < done.steps && now - last_progress < std::chrono::milliseconds(250)) return;
    last_progress = now;
    session.Progress(assignment, done.epoch, done.step, done.steps);
  };
  agent::AgentDecisionSource decisions(session, assignment, spec.stability.monitor_start_epoch);
  auto trainer = train::Trainer::Create(trainer_options, **collectives, &decisions);
  if (!trainer.ok()) return fail(trainer.status());
  (*trainer)->OnEpoch([&](const train::EpochRecord& r) {
    if (worker.metrics) {
      worker.metrics->Epoch(labels, r.images_per_second);
    }
    if (assignment.rank == 0) {
      common::LogInfo(absl::StrFormat(
          "epoch %d/%d: %s loss %.3f test accuracy %.2f%% J̄ %s %.0f img/s", r.epoch + 1,
          spec.training.epochs, common::ToString(r.phase), r.train_loss, 100 * r.test_accuracy,
          r.j_bar ? absl::StrFormat("%.4f", *r.j_bar) : std::string("-"), r.images_per_second));
    }
  });
  auto summary = (*trainer)->Run();
  if (!summary.ok()) return fail(summary.status());
  // The coordinator keeps the final artifacts: they outlive this worker and its folder.
  if (assignment.rank == 0) {
    for (const char* name : {"model.pt", "report.json"}) {
      const std::string path = absl::StrCat(trainer_options.output_dir, "/", name);
      if (absl::Status uploaded = session.Upload(assignment, name, path); !uploaded.ok()) {
        return fail(uploaded);
      }
    }
  }
  common::LogInfo("finished");
  session.Succeeded(assignment);
}

// Runs one assigned rank to its end and tells the coordinator how it went.
void RunRank(const Worker& worker, const agent::Assignment& assignment) {
  agent::CoordinatorSession& session = worker.session;
  const auto spec = common::ParseJobSpec(assignment.spec_yaml, assignment.job_id);
  const agent::RankLabels labels{assignment.job_id, spec.ok() ? spec->metadata.name : std::string(),
                                 assignment.rank};
  // Every line this rank's thread logs names its job and rank (the trainer adds the epoch).
  const common::ScopedLogFields log_fields({assignment.job_id, assignment.rank});
  if (worker.metrics) worker.metrics->RankStarted(labels);
  ++worker.running_ranks;
  auto fail = [&](const absl::Status& status) {
    const RankStop stop = DescribeStop(status, worker.running_ranks.load() - 1);
    common::LogError(stop.message);
    session.Failed(assignment, stop.message, stop.failure);
  };
  if (!spec.ok()) {
    fail(spec.status());
  } else {
    // The trainer turns exceptions into a status as it runs; one while it starts stops this rank
    // too, and the worker process carries on.
    try {
      TrainRank(worker, assignment, *spec, labels, fail);
    } catch (const std::exception& e) {
      fail(train::TrainingStopped(e, *spec));
    }
  }
  --worker.running_ranks;
  if (worker.metrics) worker.metrics->RankEnded(labels);
}

// How long a worker told to stop waits for its ranks: one in a rendezvous or a collective may not
// notice for minutes, and an orchestrator kills the process after its own grace (Kubernetes: 30 s
// by default, 60 s in deploy/k8s).
constexpr std::chrono::seconds kLeaveGrace{10};

// On SIGINT or SIGTERM the worker leaves the fleet: the coordinator restarts its ranks' jobs on
// other workers at once, and the ranks stop at their next step. The process exits when they have
// (the session's runner returns and destroys this), or after kLeaveGrace without them. Before
// there is a session to leave it exits at once.
class LeaveOnSignal {
 public:
  explicit LeaveOnSignal(sigset_t signals) : thread_([this, signals] { Run(signals); }) {}
  ~LeaveOnSignal() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  // From now on a signal leaves `session`.
  void Watch(agent::CoordinatorSession& session) {
    std::lock_guard<std::mutex> lock(mutex_);
    session_ = &session;
  }
  bool left() const { return left_; }

 private:
  void Run(const sigset_t& signals) {
    std::optional<std::string> signal;
    while (!signal) {
      // Polled so that the destructor is not kept waiting for a signal that never comes.
      signal = common::WaitForShutdownSignal(signals, std::chrono::milliseconds(200));
      std::lock_guard<std::mutex> lock(mutex_);
      if (done_) return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (session_ == nullptr) {
      common::LogInfo(absl::StrCat("received ", *signal, " before joining a coordinator: exiting"));
      std::_Exit(0);
    }
    common::LogInfo(absl::StrCat("received ", *signal, ": leaving the fleet"));
    left_ = true;
    session_->Leave(absl::StrCat("stopped by ", *signal));
    if (changed_.wait_for(lock, kLeaveGrace, [this] { return done_; })) return;
    common::LogWarning(absl::StrCat("ranks still running ", kLeaveGrace.count(),
                                    " s after the worker left: exiting without them"));
    std::_Exit(0);
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  agent::CoordinatorSession* session_ = nullptr;
  bool done_ = false;  // the session's runner returned
  std::atomic<bool> left_{false};
  std::thread thread_;  // last: it uses the members above
};

// Runs the ranks the coordinator assigns until the session ends for good; its ranks stop with it.
// Across coordinator restarts the session stays and so do the ranks.
void RunSession(const Worker& worker) {
  agent::CoordinatorSession& session = worker.session;
  const ServeOptions& options = worker.options;
  common::LogInfo(absl::StrCat("worker ", session.worker_id(), " joined ", options.coordinator,
                               " with ", options.slots, " slot(s)"));
  std::vector<std::thread> ranks;
  while (auto assignment = session.NextAssignment()) {
    common::LogInfo(
        absl::StrCat("assigned rank ", assignment->rank, " of ", assignment->world_size,
                     ", rendezvous ", assignment->master, assignment->resume ? ", resuming" : ""),
        {assignment->job_id, assignment->rank});
    ranks.emplace_back([&worker, a = *assignment] { RunRank(worker, a); });
  }
  for (std::thread& rank : ranks) rank.join();
}

}  // namespace

CLI::App* AddServeCommand(CLI::App& app, ServeOptions* options) {
  CLI::App* serve = app.add_subcommand("serve", "Join a coordinator and run the ranks it assigns");
  serve->add_option("--coordinator", options->coordinator, "Coordinator address (host:port)")
      ->capture_default_str();
  serve->add_option("--host", options->host, "This worker's address, for rendezvous")
      ->capture_default_str();
  serve->add_option("--device", options->device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  serve->add_option("--slots", options->slots, "Ranks to run at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_option("--work-dir", options->work_dir, "Checkpoints and exports, per job")
      ->capture_default_str();
  serve->add_option("--threads", options->threads, "Intra-op threads (0: all cores)");
  serve->add_option("--tls-ca", options->tls_ca, "CA (PEM) of the coordinator's certificate: TLS")
      ->check(CLI::ExistingFile);
  serve->add_option("--tls-cert", options->tls_cert, "This worker's certificate (PEM), for mTLS")
      ->check(CLI::ExistingFile);
  serve->add_option("--tls-key", options->tls_key, "Its private key (PEM)")
      ->check(CLI::ExistingFile);
  serve->add_option("--log-format", options->log_format, common::kLogFormatHelp)
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  serve
      ->add_option("--upload-retry-seconds", options->upload_retry_seconds,
                   "How long rank 0 retries an artifact upload the coordinator cannot take yet "
                   "(unreachable, disk full) before the job fails")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve
      ->add_option("--metrics-listen", options->metrics_listen,
                   "Prometheus /metrics address (host:port; empty: no metrics)")
      ->capture_default_str();
  return serve;
}

int Serve(const ServeOptions& options) {
  const sigset_t leave_signals = common::BlockShutdownSignals();  // before any thread starts
  std::optional<LeaveOnSignal> leaver(std::in_place, leave_signals);
  common::SetLogFormat(*common::LogFormatFromString(options.log_format));
  train::ConfigureIntraOpThreads(options.threads);
  const agent::SessionOptions session_options{
      options.coordinator,
      options.host,
      options.device == "cuda" ? common::Device::kCuda : common::Device::kCpu,
      options.slots,
      options.tls_ca,
      options.tls_cert,
      options.tls_key,
      std::chrono::seconds(options.upload_retry_seconds)};
  std::unique_ptr<agent::WorkerMetrics> metrics;
  if (!options.metrics_listen.empty()) {
    agent::DeviceMemoryProbe device_memory;  // a CPU worker on a GPU host reports none
    if (options.device == "cuda") {
      device_memory = []() -> std::optional<agent::DeviceMemoryReading> {
        const auto memory = train::CudaMemory();
        if (!memory) return std::nullopt;
        return agent::DeviceMemoryReading{memory->used_bytes, memory->total_bytes};
      };
    }
    auto served =
        agent::WorkerMetrics::Serve(options.metrics_listen, options.device, device_memory);
    if (!served.ok()) {
      std::cerr << "error: " << served.status().message() << "\n";
      return 1;
    }
    metrics = *std::move(served);
    common::LogInfo(absl::StrCat("metrics on port ", metrics->port()));
  }
  auto session = agent::CoordinatorSession::Create(session_options);
  absl::Status joined = session.status();
  if (session.ok()) {
    leaver->Watch(**session);  // a signal now cancels the registration rather than exiting
    joined = (*session)->Join();
  }
  if (!joined.ok()) {
    if (leaver->left()) {
      common::LogInfo("left before joining the fleet");
      return 0;
    }
    std::cerr << "error: " << joined.message() << "\n";
    // A bad TLS file, or a registration the coordinator refuses as invalid (version, slots).
    return absl::IsInvalidArgument(joined) ? common::kExitUsage : 1;
  }
  std::atomic<int> running_ranks{0};
  RunSession({**session, options, metrics.get(), running_ranks});
  const bool left = leaver->left();
  leaver.reset();  // its thread must not outlive the session
  if (left) {
    common::LogInfo("left the fleet");
    return 0;
  }
  std::cerr << "error: " << (*session)->end_reason() << "\n";
  return 1;
}

}  // namespace ocs::worker::commands
