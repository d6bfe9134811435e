// The coordinator held under load for minutes: a simulated fleet (fake workers on the real Worker
// API that train nothing) runs jobs of 1 to 8 ranks while submitters keep the queue full and a
// canceller cancels jobs at random, pending and running. Every few seconds it samples the
// coordinator's resident memory and open files, and times one /metrics scrape. At the end every job
// must be terminal, and memory and open files must be as flat in the last window as in the first
// after warm-up. Prints the samples, then a summary; exits 1 when a job is left behind or a
// resource keeps growing.
//   ocs_load_bench [--coordinator build/server/ocs-coordinator] [--minutes 5] [--workers 16]
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
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
#include "tests/support/http.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/model_zoo.h"

namespace {

using ocs::bench::Median;

using Clock = std::chrono::steady_clock;
constexpr int kSlotsPerWorker = 8;
const std::string kNoMask;

// A fake worker that runs whatever ranks it is given, of any number of jobs: each boundary it
// reports for every local rank of the job, waits for the verdict, "trains" for epoch_ms, and
// finishes the ranks after the last epoch. A cancel drops the job's ranks.
class FakeWorker {
 public:
  FakeWorker(ocs::v1::WorkerService::Stub& stub, const std::string& mask, int epoch_ms)
      : stub_(stub), mask_(mask), epoch_ms_(epoch_ms) {}

  bool Join() {
    stream_ = ocs::bench::JoinFleet(stub_, kSlotsPerWorker, &context_, &id_);
    return stream_ != nullptr;
  }

  // Until the coordinator ends the session (Stop()).
  void Run() {
    ocs::v1::CoordinatorMessage message;
    while (stream_->Read(&message)) {
      if (message.has_assignment()) {
        const auto& a = message.assignment();
        LocalJob& job = jobs_[a.job_id()];
        job.attempt = a.attempt();
        job.epochs = a.spec_yaml().empty() ? 1 : EpochsOf(a.spec_yaml());
        job.ranks.insert(a.rank());
        Report(a.job_id(), job, a.rank(), 0);
      } else if (message.has_verdict()) {
        const auto& v = message.verdict();
        auto it = jobs_.find(v.job_id());
        if (it == jobs_.end()) continue;
        LocalJob& job = it->second;
        job.pruned = job.pruned || v.kind() == ocs::v1::VERDICT_KIND_PRUNE;
        if (epoch_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(epoch_ms_));
        if (v.epoch() + 1 < job.epochs) {
          for (int rank : job.ranks) Report(v.job_id(), job, rank, v.epoch() + 1);
        } else {
          for (int rank : job.ranks) Finish(v.job_id(), job, rank);
          jobs_.erase(it);
        }
      } else if (message.has_cancel()) {
        jobs_.erase(message.cancel().job_id());
      }
    }
  }
  void Stop() { context_.TryCancel(); }
  // Keeps the worker's lease (the coordinator drops workers whose heartbeats stop).
  void Beat() { ocs::bench::Heartbeat(stub_, id_); }

 private:
  struct LocalJob {
    int attempt = 0, epochs = 1;
    bool pruned = false;
    std::set<int> ranks;
  };
  static int EpochsOf(const std::string& yaml) {
    const size_t at = yaml.find("epochs: ");
    return at == std::string::npos ? 1 : std::stoi(yaml.substr(at + 8));
  }
  void Report(const std::string& job_id, const LocalJob& job, int rank, int epoch) {
    const std::string& mask = rank == 0 && !job.pruned ? mask_ : kNoMask;
    stream_->Write(ocs::bench::EpochReport(job_id, job.attempt, rank, epoch, mask));
  }
  void Finish(const std::string& job_id, const LocalJob& job, int rank) {
    stream_->Write(ocs::bench::RankSucceeded(job_id, job.attempt, rank));
  }

  ocs::v1::WorkerService::Stub& stub_;
  const std::string& mask_;
  const int epoch_ms_;
  std::string id_;
  grpc::ClientContext context_;
  std::unique_ptr<ocs::bench::SessionStream> stream_;
  std::map<std::string, LocalJob> jobs_;
};

struct Sample {
  double seconds;
  double rss_mb;
  int open_files;
  int submitted, terminal;
  double scrape_ms, scrape_kib;  // one Prometheus scrape of the coordinator
};

// The jobs' states as the Job API reports them, by id; all of them, or those in `state`.
std::map<std::string, ocs::v1::JobState> States(
    ocs::v1::JobService::Stub& jobs, ocs::v1::JobState state = ocs::v1::JOB_STATE_UNSPECIFIED) {
  std::map<std::string, ocs::v1::JobState> states;
  ocs::v1::ListJobsRequest request;
  request.set_page_size(500);
  request.set_state(state);
  do {
    ocs::v1::ListJobsResponse response;
    grpc::ClientContext context;
    if (!jobs.ListJobs(&context, request, &response).ok()) break;
    for (const ocs::v1::Job& job : response.jobs()) states[job.id()] = job.state();
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return states;
}

bool Terminal(ocs::v1::JobState s) {
  return s == ocs::v1::JOB_STATE_SUCCEEDED || s == ocs::v1::JOB_STATE_FAILED ||
         s == ocs::v1::JOB_STATE_CANCELLED;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("The coordinator held under load: submits and cancels against a simulated fleet");
  std::string binary = "build/server/ocs-coordinator";
  double minutes = 5;
  int workers = 16, epoch_ms = 20, sample_seconds = 10, seed = 1;
  double cancel_share = 0.3;
  app.add_option("--coordinator", binary, "The ocs-coordinator binary")->check(CLI::ExistingFile);
  app.add_option("--minutes", minutes, "How long jobs are submitted")->capture_default_str();
  app.add_option("--workers", workers, "Fake workers, 8 slots each")->capture_default_str();
  app.add_option("--epoch-ms", epoch_ms, "A fake epoch's length")->capture_default_str();
  app.add_option("--cancel-share", cancel_share, "Share of jobs cancelled")->capture_default_str();
  app.add_option("--sample-seconds", sample_seconds, "Between samples")->capture_default_str();
  app.add_option("--seed", seed, "Job sizes, lengths and cancels")->capture_default_str();
  int max_active = 200;
  app.add_option("--max-active", max_active,
                 "Submitters wait while this many jobs are not terminal (a full queue, bounded)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto network = ocs::worker::engine::BuildModel("resnet20", 10, {3, 32, 32});
  auto groups = ocs::worker::engine::ChannelGroups::Derive(*network, {});
  const std::string mask = ocs::common::EncodeMask(ocs::common::DenseMask(groups->sizes()));

  const int port = *ocs::common::PickFreeLoopbackPort();
  const std::string data_dir =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/ocs-load-", getpid());
  // Ended jobs' metric series are kept a minute, not the default 15: the run reaches steady state.
  const int metrics_port = *ocs::common::PickFreeLoopbackPort();
  ocs::bench::CoordinatorProcess coordinator(
      binary, port, data_dir,
      {"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port), "--metrics-retention-seconds",
       "60"});
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20))) {
    std::fprintf(stderr, "the coordinator did not start: see %s.log\n", data_dir.c_str());
    return 1;
  }
  auto worker_stub = ocs::v1::WorkerService::NewStub(channel);
  auto jobs = ocs::v1::JobService::NewStub(channel);
  std::vector<std::unique_ptr<FakeWorker>> fleet;
  std::vector<std::thread> fleet_threads;
  for (int w = 0; w < workers; ++w) {
    fleet.push_back(std::make_unique<FakeWorker>(*worker_stub, mask, epoch_ms));
    if (!fleet.back()->Join()) return 1;
    fleet_threads.emplace_back([&worker = *fleet.back()] { worker.Run(); });
  }

  // The fleet's heartbeats, every 5 s until the end (the lease is 30 s).
  std::atomic<bool> fleet_done{false};
  std::thread heartbeats([&] {
    for (int tick = 0; !fleet_done; ++tick) {
      if (tick % 50 == 0) {
        for (auto& worker : fleet) worker->Beat();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  std::mutex mutex;
  std::vector<std::string> submitted;
  std::atomic<bool> submitting{true};
  std::atomic<int> cancels{0}, submit_errors{0};
  std::atomic<int> active{0};  // jobs not terminal at the last count
  const auto start = Clock::now();
  const auto stop_at = start + std::chrono::duration<double>(minutes * 60);
  // Two submitters keep about two fleets' worth of ranks queued; one canceller.
  std::vector<std::thread> drivers;
  for (int s = 0; s < 2; ++s) {
    drivers.emplace_back([&, s] {
      std::mt19937 random(seed * 7919 + s);
      while (Clock::now() < stop_at) {
        if (active >= max_active) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        const int ranks = 1 << std::uniform_int_distribution<int>(0, 3)(random);
        const int epochs = std::uniform_int_distribution<int>(5, 30)(random);
        ocs::v1::SubmitJobRequest request;
        request.set_spec_yaml(ocs::bench::FleetJobYaml("load", ranks, epochs));
        ocs::v1::SubmitJobResponse response;
        grpc::ClientContext context;
        if (jobs->SubmitJob(&context, request, &response).ok()) {
          ++active;
          std::lock_guard<std::mutex> lock(mutex);
          submitted.push_back(response.job().id());
        } else {
          ++submit_errors;
        }
        // Keep the queue from growing without bound: a little over what the fleet drains.
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 60)(random) * ranks));
      }
    });
  }
  // Counts the jobs not yet terminal for the submitters, once a second.
  drivers.emplace_back([&] {
    while (Clock::now() < stop_at) {
      active = static_cast<int>(States(*jobs, ocs::v1::JOB_STATE_PENDING).size() +
                                States(*jobs, ocs::v1::JOB_STATE_RUNNING).size());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
  drivers.emplace_back([&] {
    std::mt19937 random(seed);
    while (Clock::now() < stop_at) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::string victim;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (submitted.empty()) continue;
        if (std::uniform_real_distribution<double>(0, 1)(random) > cancel_share * 2) continue;
        // Mostly recent jobs: pending or running ones.
        const size_t back = std::min<size_t>(submitted.size(), 20);
        victim = submitted[submitted.size() - 1 -
                           std::uniform_int_distribution<size_t>(0, back - 1)(random)];
      }
      ocs::v1::CancelJobRequest request;
      request.set_id(victim);
      ocs::v1::Job job;
      grpc::ClientContext context;
      if (jobs->CancelJob(&context, request, &job).ok()) ++cancels;
    }
  });

  std::vector<Sample> samples;
  std::printf(
      "| t s | coordinator RSS MiB | open files | jobs submitted | jobs terminal | /metrics ms "
      "| /metrics KiB |\n|---|---|---|---|---|---|---|\n");
  auto sample = [&] {
    const auto states = States(*jobs);
    const int terminal = static_cast<int>(std::count_if(
        states.begin(), states.end(), [](const auto& s) { return Terminal(s.second); }));
    const auto scrape_start = Clock::now();
    const ocs::testing::HttpResponse scraped = ocs::testing::HttpGet(metrics_port, "/metrics");
    const double scrape_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - scrape_start).count();
    Sample s{std::chrono::duration<double>(Clock::now() - start).count(),
             coordinator.RssMb(),
             coordinator.OpenFiles(),
             static_cast<int>(states.size()),
             terminal,
             scrape_ms,
             scraped.body.size() / 1024.0};
    samples.push_back(s);
    std::printf("| %.0f | %.1f | %d | %d | %d | %.1f | %.0f |\n", s.seconds, s.rss_mb, s.open_files,
                s.submitted, s.terminal, s.scrape_ms, s.scrape_kib);
    std::fflush(stdout);
  };
  while (Clock::now() < stop_at) {
    sample();
    std::this_thread::sleep_for(std::chrono::seconds(sample_seconds));
  }
  for (std::thread& t : drivers) t.join();
  // Drain: every job must end.
  const auto drain_deadline = Clock::now() + std::chrono::minutes(3);
  std::map<std::string, ocs::v1::JobState> states = States(*jobs);
  auto left = [&] {
    return std::count_if(states.begin(), states.end(),
                         [](const auto& s) { return !Terminal(s.second); });
  };
  while (left() > 0 && Clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    states = States(*jobs);
  }
  sample();
  fleet_done = true;
  heartbeats.join();
  for (auto& worker : fleet) worker->Stop();
  for (std::thread& t : fleet_threads) t.join();

  std::map<ocs::v1::JobState, int> by_state;
  for (const auto& [id, state] : states) ++by_state[state];
  // Flat: the last third of the samples against the second (the first third is warm-up).
  const size_t third = samples.size() / 3;
  std::vector<double> rss_mid, rss_end, files_mid, files_end;
  for (size_t i = third; i < 2 * third; ++i) {
    rss_mid.push_back(samples[i].rss_mb), files_mid.push_back(samples[i].open_files);
  }
  for (size_t i = 2 * third; i < samples.size(); ++i) {
    rss_end.push_back(samples[i].rss_mb), files_end.push_back(samples[i].open_files);
  }
  const double rss_growth = Median(rss_end) - Median(rss_mid);
  const double files_growth = Median(files_end) - Median(files_mid);
  std::printf(
      "\n%.1f min, %d fake workers (%d slots): %zu jobs submitted (%d submit errors), %d "
      "cancel calls; succeeded %d, cancelled %d, failed %d, not terminal %ld\n"
      "coordinator RSS median %.1f MiB (middle third) -> %.1f MiB (last third), peak %.1f MiB; "
      "open files %.0f -> %.0f\n",
      minutes, workers, workers * kSlotsPerWorker, states.size(), submit_errors.load(),
      cancels.load(), by_state[ocs::v1::JOB_STATE_SUCCEEDED],
      by_state[ocs::v1::JOB_STATE_CANCELLED], by_state[ocs::v1::JOB_STATE_FAILED], left(),
      Median(rss_mid), Median(rss_end), coordinator.PeakRssMb(), Median(files_mid),
      Median(files_end));
  const bool flat = rss_growth <= 0.1 * Median(rss_mid) + 2 && files_growth <= 2;
  std::printf("%s\n", left() == 0 && flat ? "PASS: every job terminal, memory and open files flat"
                                          : "FAIL");
  std::filesystem::remove_all(data_dir);
  return left() == 0 && flat ? 0 : 1;
}
