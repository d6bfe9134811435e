// ocs-soak: many fault cycles on a real loopback cluster, chosen by a seed. Each cycle starts a
// coordinator and two workers, submits an 8-epoch two-rank job, injects one fault drawn from the
// catalogue (a worker or the coordinator killed at a random moment or at a crash point, a worker
// stalled past its lease, the link to the coordinator cut), then checks the job: Succeeded, every
// boundary stored once with one prune, both artifacts served as rank 0 wrote them, and every
// process shutting down on SIGTERM. Prints one row per cycle and a summary; exits 1 when anything
// was lost, duplicated, failed or hung.
//
//   ocs-soak --seed 7 --cycles 20 [--dir /tmp/ocs-soak]
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crash_point.h"
#include "tests/support/loopback_cluster.h"
#include "tests/support/tcp_proxy.h"

namespace ocs::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kEpochs = 8;
constexpr int kLeaseSeconds = 3;

enum class Fault {
  kWorkerKill,
  kWorkerCrashPoint,
  kCoordinatorKill,
  kCoordinatorCrashPoint,
  kWorkerStall,
  kLinkCut
};
constexpr Fault kFaults[] = {Fault::kWorkerKill,      Fault::kWorkerCrashPoint,
                             Fault::kCoordinatorKill, Fault::kCoordinatorCrashPoint,
                             Fault::kWorkerStall,     Fault::kLinkCut};

struct CycleResult {
  std::string fault;      // what was injected, with its random parameters
  bool injected = false;  // false: the armed point was never reached
  std::string state;
  int restarts = 0;
  BoundaryAudit audit;
  int artifacts_checked = 0, artifacts_wrong = 0;
  int hung = 0;
  double seconds = 0;
  bool ok() const {
    return state == "JOB_STATE_SUCCEEDED" && audit.intact() && audit.stored == kEpochs &&
           audit.prunes == 1 && artifacts_wrong == 0 && hung == 0;
  }
};

class Cycle {
 public:
  Cycle(std::string dir, std::mt19937& random) : cluster_(std::move(dir)), random_(random) {}

  CycleResult Run(Fault fault) {
    const auto start = Clock::now();
    CycleResult result;
    std::vector<std::string> coordinator_env;
    WorkerOptions first, second;
    std::unique_ptr<TcpProxy> link;
    ArmCrashPoint(fault, &coordinator_env, &first, &second, &result);
    if (!Started(cluster_.StartCoordinator(
                     {"--worker-lease-seconds", std::to_string(kLeaseSeconds)}, coordinator_env),
                 &result)) {
      return result;
    }
    if (fault == Fault::kLinkCut) {
      auto proxy = TcpProxy::Start(Port(cluster_.address()));
      if (!proxy.ok()) return Broken(&result, proxy.status());
      link = *std::move(proxy);
      second.coordinator = link->address();
    }
    cluster_.StartWorker(first);
    cluster_.StartWorker(second);
    absl::StatusOr<std::string> id =
        cluster_.Submit(SmallJobYaml("soak", /*workers=*/2, kEpochs, /*checkpoint_every=*/1));
    if (!id.ok()) return Broken(&result, id.status());
    Inject(fault, *id, link.get(), &result);
    Check(*id, &result);
    result.hung = ShutDown();
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  }

 private:
  // Crash points are armed through the processes' environment before they start.
  void ArmCrashPoint(Fault fault, std::vector<std::string>* coordinator_env, WorkerOptions* first,
                     WorkerOptions* second, CycleResult* result) {
    switch (fault) {
      case Fault::kCoordinatorCrashPoint: {
        const bool artifact = Draw(0, 3) == 0;
        const int pass = artifact ? 1 : Draw(1, kEpochs);
        const char* point =
            artifact ? common::crash_point::kArtifactWritten : common::crash_point::kBoundaryStored;
        *coordinator_env = {absl::StrCat("OCS_CRASH_AT=", point, "@", pass)};
        result->fault = absl::StrCat("coordinator crash at ", point, "@", pass);
        break;
      }
      case Fault::kWorkerCrashPoint: {
        const int which = Draw(0, 2);
        const char* point = which == 0   ? common::crash_point::kReportSent
                            : which == 1 ? common::crash_point::kPruned
                                         : common::crash_point::kCheckpointWritten;
        // A checkpoint pass late enough that the other armed worker, rank 0 after the
        // restart, does not reach it again.
        const int pass = which == 1 ? 1 : which == 2 ? Draw(5, kEpochs - 1) : Draw(1, kEpochs - 1);
        second->environment = {absl::StrCat("OCS_CRASH_AT=", point, "@", pass)};
        if (which == 2) first->environment = second->environment;  // only rank 0 writes checkpoints
        result->fault = absl::StrCat("worker crash at ", point, "@", pass);
        break;
      }
      default:
        break;
    }
  }

  int Draw(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }
  static int Port(const std::string& address) {
    return std::stoi(address.substr(address.rfind(':') + 1));
  }
  static bool Started(const absl::Status& status, CycleResult* result) {
    if (!status.ok()) Broken(result, status);
    return status.ok();
  }
  static CycleResult Broken(CycleResult* result, const absl::Status& status) {
    result->state = absl::StrCat("error: ", status.message());
    return *result;
  }

  // Waits until the job has `count` boundaries, then a random moment within the next epoch.
  void AfterBoundaries(const std::string& id, int count) {
    cluster_.WaitForBoundaries(id, count);
    std::this_thread::sleep_for(std::chrono::milliseconds(Draw(0, 600)));
  }

  // A process armed with a crash point dies there (`died` turns true), unless the job ends
  // first: the point was not reached.
  template <typename Died>
  bool DiesBeforeTheJobEnds(const std::string& id, Died died) {
    const auto deadline = Clock::now() + std::chrono::seconds(240);
    while (!died() && Clock::now() < deadline) {
      absl::StatusOr<ocs::v1::Job> job = cluster_.GetOnce(id, std::chrono::milliseconds(500));
      if (job.ok() && Terminal(job->state())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return died();
  }

  void Inject(Fault fault, const std::string& id, TcpProxy* link, CycleResult* result) {
    switch (fault) {
      case Fault::kWorkerKill: {
        const int after = Draw(1, kEpochs - 1), victim = Draw(0, 1);
        result->fault = absl::StrCat("worker ", victim, " SIGKILL after ", after, " boundaries");
        AfterBoundaries(id, after);
        cluster_.worker(victim).Signal(SIGKILL);
        cluster_.StartWorker();
        result->injected = true;
        break;
      }
      case Fault::kWorkerCrashPoint:
        result->injected = DiesBeforeTheJobEnds(
            id, [this] { return !cluster_.worker(0).running() || !cluster_.worker(1).running(); });
        if (result->injected) cluster_.StartWorker();
        break;
      case Fault::kCoordinatorKill: {
        const int after = Draw(1, kEpochs - 1);
        result->fault = absl::StrCat("coordinator SIGKILL after ", after, " boundaries");
        AfterBoundaries(id, after);
        cluster_.KillCoordinator();
        result->injected = true;
        Restart(result);
        break;
      }
      case Fault::kCoordinatorCrashPoint:
        result->injected =
            DiesBeforeTheJobEnds(id, [this] { return !cluster_.coordinator().running(); });
        if (result->injected) Restart(result);
        break;
      case Fault::kWorkerStall: {
        const int after = Draw(1, kEpochs - 1), victim = Draw(0, 1);
        const int seconds = kLeaseSeconds + Draw(1, 3);
        result->fault = absl::StrCat("worker ", victim, " SIGSTOP ", seconds, " s after ", after,
                                     " boundaries");
        AfterBoundaries(id, after);
        cluster_.worker(victim).Signal(SIGSTOP);
        cluster_.StartWorker();
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        cluster_.worker(victim).Signal(SIGCONT);
        result->injected = true;
        break;
      }
      case Fault::kLinkCut: {
        const int after = Draw(1, kEpochs - 1), seconds = Draw(1, 8);
        result->fault =
            absl::StrCat("link to worker 1 cut ", seconds, " s after ", after, " boundaries");
        AfterBoundaries(id, after);
        link->Cut();
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        link->Restore();
        result->injected = true;
        break;
      }
    }
  }

  void Restart(CycleResult* result) {
    cluster_.coordinator().Wait();
    if (absl::Status started =
            cluster_.StartCoordinator({"--worker-lease-seconds", std::to_string(kLeaseSeconds)});
        !started.ok()) {
      Broken(result, started);
    }
  }

  void Check(const std::string& id, CycleResult* result) {
    absl::StatusOr<ocs::v1::Job> job = cluster_.WaitForEnd(id, std::chrono::seconds(300));
    if (!job.ok()) {
      Broken(result, job.status());
      return;
    }
    result->state = ocs::v1::JobState_Name(job->state());
    if (job->state() != ocs::v1::JOB_STATE_SUCCEEDED) result->state += ": " + job->message();
    result->restarts = job->restarts();
    if (absl::StatusOr<ocs::v1::GetStabilityResponse> s = cluster_.Stability(id); s.ok()) {
      result->audit = AuditBoundaries(*s, kEpochs);
    }
    for (const char* name : {"model.pt", "report.json"}) {
      ++result->artifacts_checked;
      absl::StatusOr<std::string> served = cluster_.Download(id, name);
      const std::string written = ReadFile(absl::StrCat(cluster_.dir(), "/shared/", id, "/", name));
      if (!served.ok() || written.empty() || *served != written) ++result->artifacts_wrong;
    }
  }

  // SIGTERM to every process still running; those not gone within 30 s hung.
  int ShutDown() {
    std::vector<Subprocess*> processes{&cluster_.coordinator()};
    for (int n = 0; n < cluster_.workers(); ++n) {
      cluster_.worker(n).Signal(SIGCONT);
      processes.push_back(&cluster_.worker(n));
    }
    for (Subprocess* p : processes) p->Signal(SIGTERM);
    int hung = 0;
    for (Subprocess* p : processes) {
      if (p->running() && p->Wait(std::chrono::seconds(30)) == -1 && p->running()) ++hung;
    }
    return hung;
  }

  LoopbackCluster cluster_;
  std::mt19937& random_;
};

int Soak(uint32_t seed, int cycles, const std::string& dir) {
  std::mt19937 random(seed);
  std::printf("%5s  %-58s %-20s %8s %10s %9s %4s %4s %4s %7s\n", "cycle", "fault", "state",
              "restarts", "boundaries", "artifacts", "lost", "dup", "hung", "seconds");
  int injected = 0, succeeded = 0, records = 0, lost = 0, duplicated = 0, hung = 0, bad = 0;
  for (int c = 0; c < cycles; ++c) {
    const Fault fault = kFaults[std::uniform_int_distribution<size_t>(0, 5)(random)];
    Cycle cycle(absl::StrCat(dir, "/cycle-", c), random);
    const CycleResult r = cycle.Run(fault);
    const int cycle_lost = r.audit.missing + r.artifacts_wrong;
    std::printf("%5d  %-58s %-20s %8d %10d %9d %4d %4d %4d %7.1f\n", c,
                (r.fault + (r.injected ? "" : " (not reached)")).c_str(),
                r.state.substr(0, r.state.find(':')).c_str(), r.restarts, r.audit.stored,
                r.artifacts_checked - r.artifacts_wrong, cycle_lost, r.audit.duplicated, r.hung,
                r.seconds);
    if (!r.ok()) std::printf("       %s (see %s/cycle-%d)\n", r.state.c_str(), dir.c_str(), c);
    std::fflush(stdout);
    injected += r.injected;
    succeeded += r.state == "JOB_STATE_SUCCEEDED";
    records += r.audit.stored + r.artifacts_checked;
    lost += cycle_lost;
    duplicated += r.audit.duplicated;
    hung += r.hung;
    bad += !r.ok();
  }
  std::printf(
      "\nseed %u: %d cycles, %d faults injected, %d jobs succeeded, %d records checked, "
      "data lost %d, duplicated %d, hung processes %d\n",
      seed, cycles, injected, succeeded, records, lost, duplicated, hung);
  return bad == 0 ? 0 : 1;
}

}  // namespace
}  // namespace ocs::testing

int main(int argc, char** argv) {
  CLI::App app{"Fault soak: a loopback ocs cluster hurt once per cycle, nothing may be lost"};
  uint32_t seed = 1;
  int cycles = 12;
  std::string dir = absl::StrCat("/tmp/ocs-soak-", getpid());
  app.add_option("--seed", seed, "Seed of the fault sequence (same seed, same faults)")
      ->capture_default_str();
  app.add_option("--cycles", cycles, "Cycles, one fault each")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--dir", dir, "Where the clusters' stores, work folders and logs go");
  CLI11_PARSE(app, argc, argv);
  return ocs::testing::Soak(seed, cycles, dir);
}
