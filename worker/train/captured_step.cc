#include "worker/train/captured_step.h"

#include <exception>

#include <ATen/ATen.h>
#ifdef OCS_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "absl/strings/str_cat.h"
#include "worker/engine/torch_error.h"

namespace ocs::worker::train {

#ifdef OCS_CUDA

struct CapturedStep::Graph {
  at::cuda::CUDAGraph graph;
  at::Tensor images, labels;  // the static inputs the graph reads
};

absl::StatusOr<std::unique_ptr<CapturedStep>> CapturedStep::Capture(
    const Body& body, const at::Tensor& images, const at::Tensor& labels, int warmup,
    const std::function<void()>& before_capture) {
  auto graph = std::make_unique<Graph>();
  graph->images = images.clone();  // keeps the memory format (channels-last)
  graph->labels = labels.clone();
  try {
    // Captures must run on a side stream; device-wide syncs order it against the current one.
    c10::cuda::device_synchronize();
    {
      c10::cuda::CUDAStreamGuard side(c10::cuda::getStreamFromPool());
      for (int i = 0; i < warmup; ++i) body(graph->images, graph->labels);
      c10::cuda::device_synchronize();
      before_capture();
      graph->graph.capture_begin();
      body(graph->images, graph->labels);
      graph->graph.capture_end();
    }
    c10::cuda::device_synchronize();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("CUDA graph capture of the training step failed: ",
                                            engine::DescribeTorchError(e)));
  }
  return std::unique_ptr<CapturedStep>(new CapturedStep(std::move(graph)));
}

void CapturedStep::Replay(const at::Tensor& images, const at::Tensor& labels) {
  graph_->images.copy_(images, /*non_blocking=*/true);
  graph_->labels.copy_(labels, /*non_blocking=*/true);
  graph_->graph.replay();
}

#else

struct CapturedStep::Graph {};

absl::StatusOr<std::unique_ptr<CapturedStep>> CapturedStep::Capture(const Body&, const at::Tensor&,
                                                                    const at::Tensor&, int,
                                                                    const std::function<void()>&) {
  return absl::UnimplementedError("CUDA graphs need a worker built with OCS_CUDA=ON");
}

void CapturedStep::Replay(const at::Tensor&, const at::Tensor&) {}

#endif

CapturedStep::CapturedStep(std::unique_ptr<Graph> graph) : graph_(std::move(graph)) {}
CapturedStep::~CapturedStep() = default;

}  // namespace ocs::worker::train
