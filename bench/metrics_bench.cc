// What one Prometheus scrape of the coordinator costs when its store holds many ended jobs. Seeds
// one job store with `--ended` succeeded jobs (each with a boundary per epoch of `--job`'s spec)
// and `--pending` queued ones, all ended moments ago, starts every `--coordinator` binary given on
// a copy of it, and scrapes each in turn for `--rounds` rounds, so that a change in the machine's
// load hits them alike. Prints, per binary: the median, fastest and slowest scrape (the readiness
// probe before them fills any cache), the exposition's size and its series.
//   ocs_metrics_bench --coordinator base/ocs-coordinator,build/server/ocs-coordinator
//                     [--ended 4000] [--rounds 15] [-- --metrics-retention-seconds 900 ...]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "bench/coordinator_process.h"
#include "bench/statistics.h"
#include "common/free_port.h"
#include "common/job_spec_yaml.h"
#include "server/sqlite_job_store.h"
#include "tests/support/http.h"

namespace {

using Clock = std::chrono::steady_clock;
using ocs::server::BoundaryRecord;
using ocs::server::JobRecord;
using ocs::server::JobState;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A job that went through every phase and succeeded, with one boundary per epoch: stability
// climbing until the prune halfway through, then fine-tuning.
absl::Status AddSucceededJob(ocs::server::SqliteJobStore& store, const std::string& spec_yaml,
                             const std::string& id, int epochs, int64_t now_ms) {
  JobRecord job;
  job.id = id;
  job.name = "bench";
  job.spec_yaml = spec_yaml;
  job.create_time_ms = job.update_time_ms = now_ms - epochs * 1000;
  if (absl::Status s = store.Create(job); !s.ok()) return s;
  const int prune_epoch = epochs / 2;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const bool pruned = epoch > prune_epoch;
    BoundaryRecord b;
    b.epoch = epoch;
    b.phase = pruned ? "pruned" : (epoch > 1 ? "sparsity" : "dense");
    b.prune = epoch == prune_epoch;
    b.lambda = 0.01 * epoch;
    b.train_loss = 1.0 / epoch;
    b.train_accuracy = 0.9;
    b.test_loss = 1.1 / epoch;
    b.test_accuracy = 0.88;
    b.flops = pruned ? 15'500'000 : 31'000'000;
    b.params = pruned ? 100'000 : 270'000;
    b.learning_rate = 0.1;
    b.time_ms = job.create_time_ms + epoch * 1000;
    if (!pruned) b.j = b.j_bar = 1.0 - 1.0 / (epoch + 1);
    if (absl::Status s = store.AddBoundary(id, b); !s.ok()) return s;
  }
  for (JobState state : {JobState::kScheduled, JobState::kDense, JobState::kSparsityLearning,
                         JobState::kPruned, JobState::kSucceeded}) {
    if (auto moved = store.Transition(id, state, "", now_ms); !moved.ok()) return moved.status();
  }
  return absl::OkStatus();
}

absl::Status SeedStore(const std::string& path, const ocs::common::JobSpec& spec, int ended,
                       int pending) {
  auto store = ocs::server::SqliteJobStore::Open(path);
  if (!store.ok()) return store.status();
  const std::string yaml = ocs::common::FormatJobSpecYaml(spec);
  const int64_t now_ms = NowMs();
  for (int i = 0; i < ended; ++i) {
    if (absl::Status s =
            AddSucceededJob(**store, yaml, absl::StrCat("ended-", i), spec.training.epochs, now_ms);
        !s.ok()) {
      return s;
    }
  }
  for (int i = 0; i < pending; ++i) {
    JobRecord job;
    job.id = absl::StrCat("pending-", i);
    job.name = "bench";
    job.spec_yaml = yaml;
    job.create_time_ms = job.update_time_ms = now_ms;
    if (absl::Status s = (*store)->Create(job); !s.ok()) return s;
  }
  return absl::OkStatus();
}

struct Target {
  std::string binary;
  int metrics_port = 0;
  std::unique_ptr<ocs::bench::CoordinatorProcess> process;
  std::vector<double> scrape_ms;
  size_t bytes = 0;
  int series = 0;
};

int CountSeries(const std::string& exposition) {
  int series = 0;
  size_t start = 0;
  while (start < exposition.size()) {
    size_t end = exposition.find('\n', start);
    if (end == std::string::npos) end = exposition.size();
    if (end > start && exposition[start] != '#') ++series;
    start = end + 1;
  }
  return series;
}

bool AwaitMetrics(int port) {
  for (int i = 0; i < 300; ++i) {
    if (ocs::testing::HttpGet(port, "/metrics").status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times /metrics scrapes of coordinators whose store holds many ended jobs"};
  std::vector<std::string> binaries = {"build/server/ocs-coordinator"};
  app.add_option("--coordinator", binaries, "ocs-coordinator binaries to compare")
      ->delimiter(',')
      ->capture_default_str();
  std::string job_file = "examples/resnet20-fashion-mnist.yaml";
  app.add_option("--job", job_file, "Spec of the seeded jobs (a boundary per epoch)")
      ->check(CLI::ExistingFile)
      ->capture_default_str();
  int ended = 4000, pending = 100, rounds = 15;
  app.add_option("--ended", ended, "Succeeded jobs in the store")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--pending", pending, "Queued jobs in the store")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--rounds", rounds, "Scrapes of each coordinator")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  std::vector<std::string> flags;
  app.add_option("flags", flags, "Flags for every coordinator (after --)");
  CLI11_PARSE(app, argc, argv);

  auto spec = ocs::common::LoadJobSpecFile(job_file);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", std::string(spec.status().message()).c_str());
    return 1;
  }
  const std::string work =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/ocs-metrics-", getpid());
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const auto seed_start = Clock::now();
  if (absl::Status s = SeedStore(work + "/seed.db", *spec, ended, pending); !s.ok()) {
    std::fprintf(stderr, "seeding the store: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("seeded %d ended and %d pending jobs (%d boundaries each) in %.1f s\n", ended,
              pending, spec->training.epochs,
              std::chrono::duration<double>(Clock::now() - seed_start).count());

  std::vector<Target> targets(binaries.size());
  for (size_t i = 0; i < binaries.size(); ++i) {
    Target& t = targets[i];
    t.binary = binaries[i];
    t.metrics_port = *ocs::common::PickFreeLoopbackPort();
    std::vector<std::string> args = {"--metrics-listen",
                                     absl::StrCat("127.0.0.1:", t.metrics_port)};
    args.insert(args.end(), flags.begin(), flags.end());
    t.process = std::make_unique<ocs::bench::CoordinatorProcess>(
        t.binary, *ocs::common::PickFreeLoopbackPort(), absl::StrCat(work, "/c", i), args,
        work + "/seed.db");
    if (!AwaitMetrics(t.metrics_port)) {
      std::fprintf(stderr, "%s did not serve /metrics: see %s/c%zu.log\n", t.binary.c_str(),
                   work.c_str(), i);
      return 1;
    }
  }
  // The readiness probe above scraped once: the first timed scrape is the second.
  for (int round = 0; round < rounds; ++round) {
    for (Target& t : targets) {
      const auto start = Clock::now();
      const ocs::testing::HttpResponse scraped = ocs::testing::HttpGet(t.metrics_port, "/metrics");
      t.scrape_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      t.bytes = scraped.body.size();
      t.series = CountSeries(scraped.body);
    }
  }
  std::printf("\n| coordinator | /metrics ms, median of %d | min | max | KiB | series |\n", rounds);
  std::printf("|---|---|---|---|---|---|\n");
  for (const Target& t : targets) {
    std::printf(
        "| %s | %.1f | %.1f | %.1f | %.0f | %d |\n", t.binary.c_str(),
        ocs::bench::Median(t.scrape_ms), *std::min_element(t.scrape_ms.begin(), t.scrape_ms.end()),
        *std::max_element(t.scrape_ms.begin(), t.scrape_ms.end()), t.bytes / 1024.0, t.series);
  }
  targets.clear();
  std::filesystem::remove_all(work);
  return 0;
}
