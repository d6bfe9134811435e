// Structured sparsity regularization on the channels the current mask would remove (DESIGN.md,
// step 6), over every coupled tensor: producer filters (dim 0 of conv/linear weights, depthwise
// filters), consumer input slices (dim 1) and BatchNorm γ — not β, not biases.
//
//   decoupled (the official code's default): after each optimizer step W_c ← (1 − λ·lr) · W_c,
//     to first order: an entry of two dropped channels (a filter's output and input channel)
//     shrinks by 1 − 2·λ·lr where applying the rule per channel would give (1 − λ·lr)²
//   group lasso (the paper's penalty λ · Σ_c ‖W_c‖₂): before the step, grad W_c += λ · W_c /
//   ‖W_c‖₂,
//     ‖W_c‖₂ taken over all coupled weights of channel c.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/Tensor.h>

#include "common/mask.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/network_model.h"

namespace ocs::worker::engine {

class ChannelRegularizer {
 public:
  // Selects, in every coupled tensor, the entries of the channels that `mask` drops from
  // prunable groups. Build a new one whenever the mask changes. `mask` must fit `groups`
  // (common::CheckMaskFitsModel; the trainer checks every verdict's mask).
  ChannelRegularizer(const NetworkModel& model, const ChannelGroups& groups,
                     const common::Mask& mask);

  // Multi-tensor operations over every regularized tensor (a few kernel launches, not three per
  // tensor: on a GPU this runs after every step of the sparsity epochs).
  void ShrinkDecoupled(double lambda, double lr);
  void AddGroupLassoGradient(double lambda);

  // Channels being regularized, over all groups.
  int selected_channels() const { return selected_channels_; }

 private:
  struct Target {
    at::Tensor tensor;    // a parameter of the model (shares storage with it)
    int64_t dim = 0;      // the dimension that indexes channels
    at::Tensor selected;  // [size of dim], 1 where the entry belongs to a dropped channel
    at::Tensor channel;   // [size of dim], the entry's channel id over all groups
  };
  // Reshapes a [size of dim] vector to broadcast against `target.tensor`.
  static at::Tensor AlongDim(const at::Tensor& values, const Target& target);

  // The decoupled shrink's operands, built on its first use: each regularized tensor once, and
  // beside it, in its shape and memory format, how many dropped channels each entry belongs to.
  // W ← W − λ·lr · (count ⊙ W).
  void BuildShrinkOperands();

  std::vector<Target> targets_;
  std::vector<at::Tensor> shrink_tensors_;
  std::vector<at::Tensor> shrink_counts_;
  int64_t total_channels_ = 0;
  int selected_channels_ = 0;
};

}  // namespace ocs::worker::engine
