// A training step's forward, loss and backward recorded once as a CUDA graph and replayed for every
// batch: at batch 128 a ResNet-56 step is hundreds of small kernels whose launch cost exceeds their
// run time, and a replay launches them all at once. Inputs are copied into the graph's own static
// tensors; everything the step writes (gradients, BatchNorm statistics, running totals) lands at
// the same addresses on every replay. Re-captured whenever the model's tensors are replaced (the
// prune) or what the step computes changes (a new regularization target).
#pragma once

#include <functional>
#include <memory>

#include <ATen/Tensor.h>

#include "absl/status/statusor.h"

namespace ocs::worker::train {

class CapturedStep {
 public:
  using Body = std::function<void(const at::Tensor& images, const at::Tensor& labels)>;

  // Runs `body` `warmup` times eagerly on a side stream (cuDNN picks its algorithms, the autograd
  // engine and the allocator settle), calls `before_capture`, then records one call of `body` on
  // copies of `images` and `labels`. Unimplemented when ocs was built without CUDA; Internal when
  // the capture fails (the caller falls back to eager steps).
  static absl::StatusOr<std::unique_ptr<CapturedStep>> Capture(
      const Body& body, const at::Tensor& images, const at::Tensor& labels, int warmup,
      const std::function<void()>& before_capture);
  ~CapturedStep();

  // Copies the batch into the static inputs and replays the graph on the current stream.
  void Replay(const at::Tensor& images, const at::Tensor& labels);

  struct Graph;

 private:
  explicit CapturedStep(std::unique_ptr<Graph> graph);
  std::unique_ptr<Graph> graph_;
};

}  // namespace ocs::worker::train
