// Physical pruning: removes the channels a mask drops from every coupled tensor of a live model
// (conv weights on both axes, biases, BatchNorm γ, β and running statistics, linear weights),
// shrinking the tensors in place so that optimizers keep their parameter objects, then installs
// the resized Network. Afterwards the model's counted FLOPs equal what the search predicted.
#pragma once

#include <functional>

#include <ATen/Tensor.h>

#include "absl/status/status.h"
#include "common/mask.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/network_model.h"

namespace torch::optim {
class Optimizer;
}

namespace ocs::worker::engine {

// Maps a tensor shaped like a parameter before the prune to its pruned shape.
using TensorSelector = std::function<at::Tensor(const at::Tensor&)>;
// Called once per parameter about to shrink, so per-parameter state (momentum buffers) can be
// carried over with the same selection.
using StateCarrier = std::function<void(const at::Tensor& parameter, const TensorSelector& select)>;

// `groups` must be those of model.network(); InvalidArgument when the mask does not fit them.
absl::Status PruneModel(NetworkModel& model, const ChannelGroups& groups, const common::Mask& mask,
                        const StateCarrier& carry = nullptr);

// A StateCarrier that index-selects every per-parameter tensor of `optimizer`'s state (SGD's
// momentum buffers), so training continues after the prune without a reset.
StateCarrier CarryOptimizerState(torch::optim::Optimizer& optimizer);

}  // namespace ocs::worker::engine
