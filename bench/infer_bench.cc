// What the prune buys at inference: latency of the dense network and of a pruned model.pt, both
// as TorchScript, at the given batch sizes on the CPU or a GPU. The dense model is the same
// architecture from the model zoo (weights do not change the cost). Prints a Markdown table of
// medians.
//   ocs_infer_bench --arch resnet20 --classes 10 --input 1,28,28 --pruned runs/x/model.pt
//                   [--device cuda] [--batch-sizes 1,256] [--iterations 200]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <CLI/CLI.hpp>

#include "worker/engine/export.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/network_model.h"

namespace {

using Clock = std::chrono::steady_clock;

void Synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Median milliseconds of one forward pass over `iterations` timed runs after a warm-up.
double MedianForwardMs(torch::jit::Module& model, const at::Tensor& input, int iterations) {
  at::NoGradGuard no_grad;
  for (int i = 0; i < 10; ++i) model.forward({input});
  Synchronize(input.device());
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    model.forward({input});
    Synchronize(input.device());
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Inference latency of the dense and the pruned model");
  std::string arch, pruned_path, device_name = "cpu";
  int classes = 10, iterations = 200;
  std::vector<int> input, batch_sizes = {1, 256};
  app.add_option("--arch", arch, "Model-zoo architecture of the dense network")->required();
  app.add_option("--classes", classes, "Number of classes");
  app.add_option("--input", input, "Input shape C,H,W")->delimiter(',')->expected(3)->required();
  app.add_option("--pruned", pruned_path, "The pruned model.pt")
      ->required()
      ->check(CLI::ExistingFile);
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

  auto network = ocs::worker::engine::BuildModel(arch, classes, {input[0], input[1], input[2]});
  if (!network.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(network.status().message()).c_str());
    return 1;
  }
  const std::string dense_path =
      (std::filesystem::temp_directory_path() / ("ocs-dense-" + arch + ".pt")).string();
  if (auto status = ocs::worker::engine::ExportTorchScript(
          ocs::worker::engine::NetworkModel(*network, /*seed=*/1), dense_path);
      !status.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  torch::jit::Module dense = torch::jit::load(dense_path, device);
  torch::jit::Module pruned = torch::jit::load(pruned_path, device);
  std::filesystem::remove(dense_path);
  dense.eval();
  pruned.eval();

  std::printf("| %s inference on %s, fp32 | dense ms | pruned ms | speed-up | pruned images/s |\n",
              arch.c_str(), device_name.c_str());
  std::printf("|---|---|---|---|---|\n");
  for (int batch : batch_sizes) {
    const at::Tensor x = at::randn({batch, input[0], input[1], input[2]}).to(device);
    const double dense_ms = MedianForwardMs(dense, x, iterations);
    const double pruned_ms = MedianForwardMs(pruned, x, iterations);
    std::printf("| batch %d | %.3f | %.3f | %.2fx | %.0f |\n", batch, dense_ms, pruned_ms,
                dense_ms / pruned_ms, batch / pruned_ms * 1000);
  }
  return 0;
}
