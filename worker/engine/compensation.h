// Keeping the network the prune leaves behind. A removed channel still feeds its consumers
// something close to a constant (its BatchNorm β through the activation, once regularization
// has shrunk its weights); when it vanishes, the consumers' inputs shift. Two remedies:
//
//  1. Fold: before the surgery, measure each consumer input channel's mean activation m_e on a
//     few batches; afterwards add Σ_{e removed} m_e · Σ_k W[o, e, k] to consumer output o — into
//     its bias, or into the running mean of the BatchNorm it feeds (μ ← μ − δ). Exact for the
//     mean; only zero-padded borders of convolutions see an approximation.
//  2. Re-estimate BatchNorm statistics on a few training batches (a cumulative average).
#pragma once

#include <functional>
#include <vector>

#include <ATen/Tensor.h>

#include "common/mask.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/network_model.h"

namespace ocs::worker::engine {

// Per consumer layer: the output shift δ[o] that removing the mask's dropped inputs causes, for
// the outputs the mask keeps.
struct Compensation {
  std::vector<std::pair<int, at::Tensor>> shifts;  // (layer, δ of shape [kept outputs])
};

// Runs `batches` (eval mode, no grad) through the dense `model` and computes the shifts.
// `next_batch(k)` returns the k-th preprocessed input batch. `mask` must fit `groups`
// (common::CheckMaskFitsModel; the trainer checks every verdict's mask): it is not checked here.
Compensation MeasureCompensation(NetworkModel& model, const ChannelGroups& groups,
                                 const common::Mask& mask, int batches,
                                 const std::function<at::Tensor(int)>& next_batch);

// Applies the shifts to the pruned model (layer indices are unchanged by surgery). Returns how
// many consumers were compensated.
int ApplyCompensation(NetworkModel& model, const Compensation& compensation);

// Resets every BatchNorm's running statistics and re-estimates them over `batches` batches in
// train mode (no grad); restores the model's mode and momentum afterwards.
void ReestimateBatchNorm(NetworkModel& model, int batches,
                         const std::function<at::Tensor(int)>& next_batch);

}  // namespace ocs::worker::engine
