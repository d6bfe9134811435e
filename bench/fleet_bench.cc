// The coordinator under a simulated fleet: fake workers speak the real Worker API (register, one
// session stream each, an epoch report per rank per boundary, rank 0 with a real ResNet-20 mask)
// but train nothing, against a real ocs-coordinator process with its SQLite store. For each fleet
// size it prints the epoch reports per second sustained, the verdict latency (a worker's last
// report of a boundary to that boundary's verdict) p50/p99, and the coordinator's peak memory.
// Goals of the coordinator's issue: >= 2,000 reports/s at 256 ranks, p99 <= 20 ms at 64 ranks.
//   ocs_fleet_bench [--coordinator build/server/ocs-coordinator] [--ranks 64,256] [--epochs 100]
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "bench/coordinator_process.h"
#include "bench/fake_worker_session.h"
#include "bench/statistics.h"
#include "common/free_port.h"
#include "common/mask.h"
#include "common/version.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "ocs/v1/worker_service.grpc.pb.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/model_zoo.h"

namespace {

using ocs::bench::Percentile;

using Clock = std::chrono::steady_clock;
constexpr int kSlotsPerWorker = 8;
const std::string kNoMask;

struct FleetResult {
  double reports_per_second = 0;
  double p50_ms = 0, p99_ms = 0;
  double peak_rss_mb = 0;
  bool ok = true;
};

// One fake worker: its session, the ranks assigned to it, and its verdict latencies.
class FakeWorker {
 public:
  FakeWorker(ocs::v1::WorkerService::Stub& stub, const std::string& mask)
      : stub_(stub), mask_(mask) {}

  bool Join() {
    stream_ = ocs::bench::JoinFleet(stub_, kSlotsPerWorker, &session_context_);
    return stream_ != nullptr;
  }

  // Waits for its assignments, then runs every boundary: one report per rank, then the verdict.
  void Run(int epochs, std::atomic<int64_t>* reports) {
    ocs::v1::CoordinatorMessage message;
    while (static_cast<int>(ranks_.size()) < kSlotsPerWorker && stream_->Read(&message)) {
      if (message.has_assignment()) {
        job_ = message.assignment().job_id();
        attempt_ = message.assignment().attempt();
        ranks_.push_back(message.assignment().rank());
      }
    }
    bool pruned = false;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      for (int rank : ranks_) {
        const std::string& mask = rank == 0 && !pruned ? mask_ : kNoMask;
        if (!stream_->Write(ocs::bench::EpochReport(job_, attempt_, rank, epoch, mask))) return;
        ++*reports;
      }
      const auto sent = Clock::now();
      while (stream_->Read(&message)) {
        if (message.has_verdict() && message.verdict().epoch() == epoch) break;
        if (message.has_cancel()) return;
      }
      latencies_ms_.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
      pruned = pruned || message.verdict().kind() == ocs::v1::VERDICT_KIND_PRUNE;
    }
    for (int rank : ranks_) stream_->Write(ocs::bench::RankSucceeded(job_, attempt_, rank));
    stream_->WritesDone();
  }

  const std::vector<double>& latencies_ms() const { return latencies_ms_; }

 private:
  ocs::v1::WorkerService::Stub& stub_;
  const std::string& mask_;
  std::string job_;
  int attempt_ = 0;
  std::vector<int> ranks_;
  grpc::ClientContext session_context_;
  std::unique_ptr<ocs::bench::SessionStream> stream_;
  std::vector<double> latencies_ms_;
};

FleetResult RunFleet(const std::string& binary, int ranks, int epochs, const std::string& mask,
                     bool metrics) {
  const int port = *ocs::common::PickFreeLoopbackPort();
  const std::string data_dir = absl::StrCat(std::filesystem::temp_directory_path().string(),
                                            "/ocs-fleet-", ranks, "-", getpid());
  // With metrics: /metrics served and every RPC counted (the default); without: neither.
  ocs::bench::CoordinatorProcess coordinator(binary, port, data_dir,
                                             {"--metrics-listen", metrics ? "127.0.0.1:0" : ""});
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  FleetResult result;
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
    result.ok = false;
    return result;
  }
  auto workers_stub = ocs::v1::WorkerService::NewStub(channel);
  auto jobs_stub = ocs::v1::JobService::NewStub(channel);
  std::vector<std::unique_ptr<FakeWorker>> fleet;
  for (int w = 0; w < ranks / kSlotsPerWorker; ++w) {
    fleet.push_back(std::make_unique<FakeWorker>(*workers_stub, mask));
    if (!fleet.back()->Join()) result.ok = false;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // sessions connected
  ocs::v1::SubmitJobRequest submit;
  submit.set_spec_yaml(ocs::bench::FleetJobYaml("fleet", ranks, epochs));
  ocs::v1::SubmitJobResponse submitted;
  grpc::ClientContext context;
  if (!jobs_stub->SubmitJob(&context, submit, &submitted).ok()) result.ok = false;

  std::atomic<int64_t> reports{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& worker : fleet) {
    threads.emplace_back([&worker, epochs, &reports] { worker->Run(epochs, &reports); });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> latencies;
  for (const auto& worker : fleet) {
    latencies.insert(latencies.end(), worker->latencies_ms().begin(), worker->latencies_ms().end());
  }
  result.reports_per_second = reports / seconds;
  result.p50_ms = Percentile(latencies, 0.50);
  result.p99_ms = Percentile(latencies, 0.99);
  result.peak_rss_mb = coordinator.PeakRssMb();
  result.ok = result.ok && reports == int64_t{ranks} * epochs;
  std::filesystem::remove_all(data_dir);
  if (result.ok) std::filesystem::remove(data_dir + ".log");
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("The coordinator under a simulated fleet");
  std::string binary = "build/server/ocs-coordinator";
  std::vector<int> fleet_sizes = {64, 256};
  int epochs = 100;
  app.add_option("--coordinator", binary, "The ocs-coordinator binary")->check(CLI::ExistingFile);
  app.add_option("--ranks", fleet_sizes, "Simulated ranks per run (multiples of 8)")
      ->delimiter(',');
  app.add_option("--epochs", epochs, "Epoch boundaries per run")->check(CLI::Range(2, 100000));
  CLI11_PARSE(app, argc, argv);

  auto network = ocs::worker::engine::BuildModel("resnet20", 10, {3, 32, 32});
  auto groups = ocs::worker::engine::ChannelGroups::Derive(*network, {});
  const std::string mask = ocs::common::EncodeMask(ocs::common::DenseMask(groups->sizes()));

  std::printf(
      "| simulated ranks | fake workers | metrics | epoch reports/s | verdict p50 ms "
      "| verdict p99 ms | coordinator peak RSS MiB |\n|---|---|---|---|---|---|---|\n");
  for (int ranks : fleet_sizes) {
    for (bool metrics : {false, true}) {  // side by side: what /metrics and RPC counting cost
      const FleetResult r = RunFleet(binary, ranks, epochs, mask, metrics);
      std::printf("| %d | %d | %s | %.0f | %.2f | %.2f | %.1f |%s\n", ranks,
                  ranks / kSlotsPerWorker, metrics ? "on" : "off", r.reports_per_second, r.p50_ms,
                  r.p99_ms, r.peak_rss_mb,
                  r.ok ? "" : " (run incomplete: see the coordinator log)");
    }
  }
  return 0;
}
