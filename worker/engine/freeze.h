// A model.pt made ready for serving: `torch.jit.freeze` inlines the weights as constants and folds
// each BatchNorm into the convolution before it, and the result is saved as TorchScript again.
// Frozen, it keeps its outputs (checked here), loads anywhere model.pt does and skips the
// BatchNorm passes. torch.jit.optimize_for_inference, which turns a CPU's small-batch convolutions
// into oneDNN's, is deliberately not applied: it bakes in the machine's oneDNN or cuDNN choices
// and its result cannot be saved (PyTorch documents it as not serializable); servers apply it
// after loading.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ocs::worker::engine {

struct FreezeOptions {
  std::vector<int64_t> input_shape;  // C,H,W of one input, to check the frozen model on
  bool cuda = false;                 // freeze and check on the GPU (constants stay there)
  double tolerance = 1e-4;           // relative to the largest output of the check batch
};

struct FrozenModel {
  int batch_norms_before = 0;  // aten::batch_norm calls in the inlined forward
  int batch_norms_after = 0;
  double max_abs_difference = 0;  // frozen against original, on a seeded batch of two
  double max_abs_output = 0;
};

// Reads the TorchScript module at `in`, freezes it, checks it against the original and writes it
// to `out` (through a temporary file, flushed to the disk before it is renamed, so `out` is never
// half-written). Errors name the file and the step: an input shape with a size below 1, not found,
// not TorchScript, no forward, a check batch that cannot be allocated (ResourceExhausted) or that
// the model refuses, outputs that differ beyond the tolerance, an unwritable destination.
absl::StatusOr<FrozenModel> FreezeForServing(const std::string& in, const std::string& out,
                                             const FreezeOptions& options);

}  // namespace ocs::worker::engine
