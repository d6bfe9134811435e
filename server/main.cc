// ocs-coordinator: the control plane. main only parses the command line and wires the parts.
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/cli_parse.h"
#include "common/log.h"
#include "common/shutdown_signals.h"
#include "common/version.h"
#include "server/artifact_files.h"
#include "server/coordinator_metrics.h"
#include "server/coordinator_server.h"
#include "server/job_manager.h"
#include "server/job_runner.h"
#include "server/progress_board.h"
#include "server/sqlite_job_store.h"
#include "server/worker_registry.h"

namespace {

// A thread that shuts the server down on SIGINT/SIGTERM.
std::thread ShutdownOnSignal(ocs::server::CoordinatorServer* server, sigset_t signals) {
  return std::thread([server, signals] {
    const std::string signal = ocs::common::WaitForShutdownSignal(signals);
    ocs::common::LogInfo(absl::StrCat("received ", signal, ", shutting down"));
    server->Shutdown();
  });
}

// Once a second until `done`: declares workers whose heartbeats stopped (a hung process, a
// partitioned host) lost, and gives up on ranks that did not re-attach after a restart; their jobs
// restart from their checkpoints. A closed session is noticed at once. Also stores the ends of
// jobs the store refused before (a full disk), and starts restarts that waited for the fleet to
// settle after a peer's failure.
std::thread WatchLeases(ocs::server::WorkerRegistry& workers, ocs::server::JobRunner& runner,
                        const std::atomic<bool>& done) {
  return std::thread([&workers, &runner, &done] {
    while (!done) {
      for (const auto& [id, replaced] : workers.ExpireLeases()) {
        if (replaced) {
          ocs::common::LogInfo(absl::StrCat("worker ", id, " (registered again since) is dropped"));
        } else {
          ocs::common::LogWarning(absl::StrCat("worker ", id, " missed its heartbeats: lost"));
        }
        runner.Disconnect(id, "was lost");
      }
      runner.ExpireReattachments();
      runner.SettleEnds();
      runner.StartSettledRestarts();
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
}

// TLS and tokens from the flags. Tokens never travel in plaintext: they need TLS.
absl::StatusOr<ocs::server::ServerSecurity> Security(const ocs::api::ServerTlsFiles& tls,
                                                     const std::string& tokens_file) {
  if (!tokens_file.empty() && tls.cert.empty()) {
    return absl::InvalidArgumentError(
        "--auth-tokens-file needs --tls-cert and --tls-key: bearer tokens must not travel in "
        "plaintext");
  }
  ocs::server::ServerSecurity security;
  auto credentials = ocs::api::MakeServerCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  if (!tls.cert.empty()) security.credentials = *credentials;  // null: plaintext
  auto tokens = ocs::api::TokenAuthenticator::FromFile(tokens_file);
  if (!tokens.ok()) return tokens.status();
  security.tokens = *std::move(tokens);
  security.require_worker_certificates = !tls.client_ca.empty();
  return security;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t shutdown_signals = ocs::common::BlockShutdownSignals();
  CLI::App app{
      "ocs-coordinator: runs one-cycle structured pruning jobs on a fleet of ocs-worker "
      "processes (gRPC control plane)."};
  app.set_version_flag("--version", std::string("ocs-coordinator ") + ocs::common::kVersion +
                                        " (api " + ocs::common::kApiVersion + ")");
  std::string listen = "0.0.0.0:7070";
  app.add_option("--listen", listen, "gRPC address to serve on (host:port)")->capture_default_str();
  int lease_seconds = 30;
  app.add_option("--worker-lease-seconds", lease_seconds,
                 "A worker that misses heartbeats this long is lost")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  int first_port = 29500;
  app.add_option("--rendezvous-port-base", first_port,
                 "Jobs' c10d stores take ports from here on (1000 of them, in turn)")
      ->check(CLI::Range(1024, 64000))
      ->capture_default_str();
  int reattach_seconds = 60;
  app.add_option("--reattach-seconds", reattach_seconds,
                 "After a restart, how long running jobs wait for their workers to re-attach "
                 "before they restart from their checkpoints")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  ocs::server::MetricsOptions metrics_options;
  app.add_option("--metrics-listen", metrics_options.listen,
                 "Prometheus /metrics address (host:port; empty: no metrics)")
      ->capture_default_str();
  int metrics_retention_seconds = 900;
  app.add_option("--metrics-retention-seconds", metrics_retention_seconds,
                 "How long an ended job's series stay in /metrics")
      ->check(CLI::Range(0, 7 * 24 * 3600))
      ->capture_default_str();
  app.add_option("--metrics-max-ended-jobs", metrics_options.max_ended_jobs,
                 "At most this many ended jobs are in /metrics, the most recently ended")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  std::string data_dir = "ocs-data";
  app.add_option("--data-dir", data_dir, "Folder of the job store (SQLite) and artifacts")
      ->capture_default_str();
  ocs::api::ServerTlsFiles tls;
  app.add_option("--tls-cert", tls.cert, "Server certificate (PEM): serve over TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls.key, "Its private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", tls.client_ca,
                 "CA (PEM) that signs workers' client certificates: workers must present one "
                 "(mutual TLS)")
      ->check(CLI::ExistingFile);
  std::string tokens_file;
  app.add_option("--auth-tokens-file", tokens_file,
                 "Bearer tokens of the job API, one per line: calls without one are refused "
                 "(needs TLS)")
      ->check(CLI::ExistingFile);
  std::string health_listen;
  app.add_option("--health-listen", health_listen,
                 "A plaintext port serving only grpc.health.v1, for probes that cannot do TLS "
                 "(host:port; empty: none)");
  std::string log_format = "text";
  app.add_option("--log-format", log_format, ocs::common::kLogFormatHelp)
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  if (auto exit_code = ocs::common::ParseCommandLine(app, argc, argv)) return *exit_code;
  ocs::common::SetLogFormat(*ocs::common::LogFormatFromString(log_format));

  auto security = Security(tls, tokens_file);
  if (!security.ok()) {
    ocs::common::LogError(security.status().message());
    return ocs::common::kExitUsage;
  }
  if (!tokens_file.empty() && tls.client_ca.empty()) {
    ocs::common::LogWarning(
        "--auth-tokens-file guards the Job API only: without --tls-client-ca the Worker API "
        "(registration, sessions, artifact uploads) answers any caller that reaches this port");
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  auto store = ocs::server::SqliteJobStore::Open(data_dir + "/ocs.db");
  if (!store.ok()) {
    ocs::common::LogError(store.status().message());
    return 1;
  }
  ocs::server::JobManager jobs(**store, ocs::server::SystemClockMs);
  ocs::server::WorkerRegistry workers(ocs::server::SystemClockMs, lease_seconds,
                                      ocs::common::kVersion);
  ocs::server::ProgressBoard progress;
  ocs::server::JobRunner runner(**store, workers, ocs::server::SystemClockMs, first_port, 1000,
                                &progress);
  jobs.OnSubmitted([&runner] { runner.Schedule(); });
  jobs.OnCancelled([&runner](const std::string& id, const std::string& reason) {
    runner.Cancelled(id, reason);
  });
  for (const std::string& id : runner.AwaitReattachment(reattach_seconds * int64_t{1000})) {
    ocs::common::LogWarning(absl::StrCat("was running when the coordinator stopped: waiting ",
                                         reattach_seconds, " s for its ranks"),
                            {id});
  }
  std::unique_ptr<ocs::server::CoordinatorMetrics> metrics;
  ocs::server::CoordinatorServer::Interceptors interceptors;
  if (!metrics_options.listen.empty()) {
    metrics_options.retention_ms = metrics_retention_seconds * int64_t{1000};
    auto served = ocs::server::CoordinatorMetrics::Serve(metrics_options, **store, workers,
                                                         ocs::server::SystemClockMs);
    if (!served.ok()) {
      ocs::common::LogError(served.status().message());
      return 1;
    }
    metrics = *std::move(served);
    interceptors.push_back(metrics->RpcInterceptorFactory());
    ocs::common::LogInfo(absl::StrCat("metrics on port ", metrics->port()));
  }
  const ocs::server::ArtifactFiles artifacts(data_dir + "/artifacts");
  ocs::server::CoordinatorServer server(jobs, workers, runner, artifacts, progress,
                                        *std::move(security));
  std::thread signal_thread = ShutdownOnSignal(&server, shutdown_signals);
  auto port = server.Start(listen, std::move(interceptors));
  if (!port.ok()) {
    ocs::common::LogError(port.status().message());
    signal_thread.detach();
    // TLS files that do not load are the user's to fix, like the other bad TLS files.
    return absl::IsInvalidArgument(port.status()) ? ocs::common::kExitUsage : 1;
  }
  ocs::common::LogInfo(
      absl::StrCat("ocs-coordinator ", ocs::common::kVersion, " serving on port ", *port));
  if (!health_listen.empty()) {
    auto health_port = server.StartHealthPort(health_listen);
    if (!health_port.ok()) {
      ocs::common::LogError(health_port.status().message());
      server.Shutdown();
      signal_thread.detach();
      return 1;
    }
    ocs::common::LogInfo(absl::StrCat("health on port ", *health_port));
  }
  std::atomic<bool> done{false};
  std::thread lease_thread = WatchLeases(workers, runner, done);
  server.Wait();
  done = true;
  lease_thread.join();
  signal_thread.join();
  return 0;
}
