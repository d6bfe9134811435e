// libFuzzer target: the coordinator's validation of epoch reports. Fuzzed reports — any job,
// worker, rank, attempt, epoch, metrics (NaN and infinities included), digest and mask bytes —
// go to a real JobRunner over a SQLite store running a 2-rank ResNet-20 job. Whatever arrives,
// nothing crashes and the stored boundaries stay one per epoch, in order, none missing.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "server/job_manager.h"
#include "server/job_runner.h"
#include "server/sqlite_job_store.h"

namespace {

using namespace ocs::server;  // NOLINT: a fuzz target's few lines

class RecordingLink final : public WorkerLink {
 public:
  void Assign(const RankAssignment& assignment) override { rank = assignment.rank; }
  void SendVerdict(const std::string&, int, const ocs::common::Verdict&) override {}
  void Cancel(const std::string&, int, const std::string&) override {}
  int rank = -1;
};

struct Coordinator {
  Coordinator() {
    const std::string path = absl::StrCat("/tmp/ocs-report-fuzzer-", getpid(), ".db");
    std::filesystem::remove(path);
    store = *SqliteJobStore::Open(path);
    jobs = std::make_unique<JobManager>(*store, clock);
    runner = std::make_unique<JobRunner>(*store, registry, clock, 29000, 100);
    for (int i = 0; i < 2; ++i) {
      workers[i] = registry.Register("127.0.0.1", ocs::common::Device::kCpu, 1, "0.1.0")->id;
      runner->Connect(workers[i], &links[i]);
    }
    NewJob();
  }
  // A fresh job whenever the previous one ended, so that fuzzing goes on past failures.
  void NewJob() {
    job = jobs->Submit(
                  "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: fuzz}\nspec:\n"
                  "  model: {arch: resnet20}\n  data: {dataset: synthetic}\n"
                  "  training: {epochs: 20}\n"
                  "  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, "
                  "sparsityEndEpoch: 10}\n"
                  "  resources: {workers: 2, device: cpu}\n",
                  "")
              ->id;
    runner->Schedule();
  }

  Clock clock = [] { return int64_t{1000}; };
  WorkerRegistry registry{clock, 30, "0.1.0"};
  std::unique_ptr<SqliteJobStore> store;
  std::unique_ptr<JobManager> jobs;
  std::unique_ptr<JobRunner> runner;
  RecordingLink links[2];
  std::string workers[2];
  std::string job;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Coordinator* c = new Coordinator();  // one coordinator for the whole run
  FuzzedDataProvider in(data, size);
  const int worker = in.ConsumeIntegralInRange(0, 2);
  RankReport report;
  report.job_id = in.ConsumeBool() ? c->job : in.ConsumeRandomLengthString(32);
  report.rank = in.ConsumeBool() ? c->links[worker % 2].rank : in.ConsumeIntegral<int>();
  report.attempt = in.ConsumeBool() ? 0 : in.ConsumeIntegral<int>();
  report.epoch = in.ConsumeIntegralInRange(-2, 25);
  report.train_loss = in.ConsumeFloatingPoint<double>();
  report.train_accuracy = in.ConsumeProbability<double>();
  report.test_loss = in.ConsumeBool() ? in.ConsumeFloatingPoint<double>() : 1.0;
  report.test_accuracy = in.ConsumeProbability<double>();
  report.flops = in.ConsumeIntegral<int64_t>();
  report.weights_digest = in.ConsumeIntegralInRange<uint32_t>(7, 8);
  if (in.ConsumeBool()) {
    auto mask = ocs::common::DecodeMask(in.ConsumeRandomLengthString(4096));
    if (mask.ok()) report.mask = *mask;
  }
  const std::string from = worker < 2 ? c->workers[worker] : in.ConsumeRandomLengthString(16);
  (void)c->runner->Report(from, report);

  auto boundaries = c->store->Boundaries(c->job);
  if (!boundaries.ok()) std::abort();
  for (size_t i = 0; i < boundaries->size(); ++i) {
    if ((*boundaries)[i].epoch != static_cast<int>(i)) std::abort();  // missing or duplicated
  }
  if (IsTerminal(c->store->Get(c->job)->state)) c->NewJob();
  return 0;
}
