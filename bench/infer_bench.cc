// What the prune buys at inference: latency of the dense network against pruned ones, all as
// TorchScript, at the given batch sizes on the CPU or a GPU. The pruned models are a trained
// model.pt (--pruned) and the architecture searched down by --target with each --round-to (channel
// counts rounded to multiples: GPU tensor cores prefer multiples of 8, oneDNN's blocked layouts on
// AVX-512 CPUs multiples of 16). Weights do not change the cost,
// so the searched models keep their initial weights. Each model is timed as exported, frozen as
// `ocs-worker model freeze` writes it (BatchNorm folded into the convolutions) and read back, and
// frozen then optimize_for_inference (which a server can apply after loading; it cannot be saved).
// All models take turns within each timed round. Prints a Markdown table of medians.
//   ocs_infer_bench --arch resnet56 --classes 10 --input 1,28,28 [--pruned runs/x/model.pt,...]
//                   [--target 0.5] [--round-to 1,8] [--device cuda] [--batch-sizes 1,256]
//                   [--iterations 200]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/statistics.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/export.h"
#include "worker/engine/flops.h"
#include "worker/engine/flops_target_search.h"
#include "worker/engine/freeze.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/network_model.h"
#include "worker/engine/surgery.h"

namespace {

using namespace ocs::worker::engine;
using Clock = std::chrono::steady_clock;

struct Candidate {
  std::string name;
  std::optional<int64_t> flops;  // unknown for a model.pt read back
  torch::jit::Module exported;   // model.pt as a job writes it
  torch::jit::Module frozen;     // what `ocs-worker model freeze` writes, read back
  torch::jit::Module optimized;  // frozen + optimize_for_inference, in memory
};

void Synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Median milliseconds of one forward pass of each module, after a warm-up. The modules take
// turns, one pass each per round, so a change in the machine's load falls on all of them alike.
std::vector<double> MedianForwardMs(const std::vector<torch::jit::Module*>& modules,
                                    const at::Tensor& input, int iterations) {
  at::NoGradGuard no_grad;
  for (torch::jit::Module* module : modules) {
    for (int i = 0; i < 10; ++i) module->forward({input});
  }
  Synchronize(input.device());
  std::vector<std::vector<double>> ms(modules.size());
  for (int i = 0; i < iterations; ++i) {
    for (size_t m = 0; m < modules.size(); ++m) {
      const auto start = Clock::now();
      modules[m]->forward({input});
      Synchronize(input.device());
      ms[m].push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  }
  std::vector<double> medians;
  for (auto& times : ms) medians.push_back(ocs::bench::Median(std::move(times)));
  return medians;
}

// A file of its own in the temporary folder.
std::string TemporaryPath(absl::string_view suffix) {
  static int files = 0;
  return (std::filesystem::temp_directory_path() /
          absl::StrCat("ocs-infer-bench-", getpid(), "-", ++files, suffix))
      .string();
}

absl::StatusOr<Candidate> Load(std::string name, std::optional<int64_t> flops,
                               const std::string& path, const std::vector<int64_t>& input,
                               const c10::Device& device) {
  const std::string frozen_path = TemporaryPath(".frozen.pt");
  const auto frozen = FreezeForServing(path, frozen_path, {input, device.is_cuda()});
  if (!frozen.ok()) return frozen.status();
  torch::jit::Module exported = torch::jit::load(path, device);
  exported.eval();
  torch::jit::Module optimized = torch::jit::freeze(exported);
  optimized = torch::jit::optimize_for_inference(optimized);
  Candidate candidate{.name = std::move(name),
                      .flops = flops,
                      .exported = std::move(exported),
                      .frozen = torch::jit::load(frozen_path, device),
                      .optimized = std::move(optimized)};
  std::filesystem::remove(frozen_path);
  return candidate;
}

// Exports `model` to a temporary file and loads it as a candidate.
absl::StatusOr<Candidate> ViaFile(std::string name, const NetworkModel& model,
                                  const std::vector<int64_t>& input, const c10::Device& device) {
  const std::string path = TemporaryPath(".pt");
  if (absl::Status status = ExportTorchScript(model, path); !status.ok()) return status;
  auto candidate = Load(std::move(name), NetworkCost(model.network()).flops, path, input, device);
  std::filesystem::remove(path);
  return candidate;
}

// The architecture searched down to `target` with channel counts in multiples of `round_to`,
// ranked by the group saliency of its initial weights.
absl::StatusOr<Candidate> Searched(const Network& network, double target, int round_to,
                                   const std::vector<int64_t>& input, const c10::Device& device) {
  const absl::StatusOr<ChannelGroups> groups = ChannelGroups::Derive(network, {});
  if (!groups.ok()) return groups.status();
  NetworkModel model(network, /*seed=*/1);
  const auto search = SearchSubnetwork(network, *groups, GroupSaliency(model, *groups, true),
                                       {.target_reduction = target, .round_to = round_to});
  if (!search.ok()) return search.status();
  if (absl::Status status = PruneModel(model, *groups, search->mask); !status.ok()) return status;
  return ViaFile(absl::StrCat("searched, roundTo ", round_to), model, input, device);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Inference latency of the dense network and pruned models");
  std::string arch, device_name = "cpu";
  std::vector<std::string> pruned_paths;
  int classes = 10, iterations = 200;
  double target = 0.5;
  std::vector<int> input, batch_sizes = {1, 256}, round_to = {1, 8};
  app.add_option("--arch", arch, "Model-zoo architecture of the dense network")->required();
  app.add_option("--classes", classes, "Number of classes");
  app.add_option("--input", input, "Input shape C,H,W")->delimiter(',')->expected(3)->required();
  app.add_option("--pruned", pruned_paths, "Pruned model.pt files of the same architecture")
      ->delimiter(',')
      ->check(CLI::ExistingFile);
  app.add_option("--target", target, "FLOPs reduction of the searched models")
      ->check(CLI::Range(0.01, 0.99));
  app.add_option("--round-to", round_to, "Channel multiples of the searched models (none: skip)")
      ->delimiter(',');
  app.add_option("--device", device_name, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--batch-sizes", batch_sizes, "Batch sizes")->delimiter(',');
  app.add_option("--iterations", iterations, "Timed runs per measurement")
      ->check(CLI::Range(1, 100000));
  CLI11_PARSE(app, argc, argv);
  if (device_name == "cuda" && !torch::cuda::is_available()) {
    std::fprintf(stderr, "error: --device cuda but no CUDA device is visible\n");
    return 1;
  }
  const c10::Device device(device_name == "cuda" ? c10::kCUDA : c10::kCPU);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);

  const auto network = BuildModel(arch, classes, {input[0], input[1], input[2]});
  if (!network.ok()) return Fail(network.status());
  const std::vector<int64_t> input_shape(input.begin(), input.end());
  std::vector<Candidate> candidates;
  auto dense = ViaFile("dense", NetworkModel(*network, /*seed=*/1), input_shape, device);
  if (!dense.ok()) return Fail(dense.status());
  candidates.push_back(*std::move(dense));
  for (const std::string& path : pruned_paths) {
    // Named by their folder: runs/<job>/model.pt or artifacts/<job id>/model.pt.
    const std::string folder = std::filesystem::path(path).parent_path().filename().string();
    auto pruned = Load(folder.empty() ? path : folder + "/model.pt", {}, path, input_shape, device);
    if (!pruned.ok()) return Fail(pruned.status());
    candidates.push_back(*std::move(pruned));
  }
  for (int multiple : round_to) {
    auto searched = Searched(*network, target, multiple, input_shape, device);
    if (!searched.ok()) return Fail(searched.status());
    candidates.push_back(*std::move(searched));
  }

  std::printf(
      "| %s inference on %s, fp32 | M FLOPs | batch | ms as exported | ms frozen (model freeze) "
      "| ms frozen + optimize_for_inference | speed-up (frozen) | images/s (frozen) |\n",
      arch.c_str(), device_name.c_str());
  std::printf("|---|---|---|---|---|---|---|---|\n");
  constexpr int kForms = 3;  // each candidate's exported, frozen and optimized module, in turn
  std::vector<torch::jit::Module*> modules;
  for (Candidate& c : candidates)
    modules.insert(modules.end(), {&c.exported, &c.frozen, &c.optimized});
  for (int batch : batch_sizes) {
    const at::Tensor x = at::randn({batch, input[0], input[1], input[2]}).to(device);
    const std::vector<double> ms = MedianForwardMs(modules, x, iterations);
    const double dense_frozen_ms = ms[1];
    for (size_t i = 0; i < candidates.size(); ++i) {
      const Candidate& c = candidates[i];
      const double exported_ms = ms[kForms * i], frozen_ms = ms[kForms * i + 1],
                   optimized_ms = ms[kForms * i + 2];
      const std::string flops = c.flops ? absl::StrFormat("%.1f", *c.flops / 1e6) : "-";
      std::printf("| %s | %s | %d | %.3f | %.3f | %.3f | %.2fx | %.0f |\n", c.name.c_str(),
                  flops.c_str(), batch, exported_ms, frozen_ms, optimized_ms,
                  dense_frozen_ms / frozen_ms, batch / frozen_ms * 1000);
    }
  }
  return 0;
}
