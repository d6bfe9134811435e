// FLOPs and parameters, computed analytically from the structure and the channel widths.
//
// Convention (that of the pruning literature): FLOPs are the multiply-accumulates of conv and
// linear layers, out · (in / groups) · k² · H_out · W_out and in · out; BatchNorm, activations,
// pooling and additions are not counted. Parameters are all learnable tensors: conv and linear
// weights and biases, BatchNorm γ and β (running statistics are buffers, not parameters).
#pragma once

#include <cstdint>
#include <vector>

#include "worker/engine/channel_groups.h"
#include "worker/engine/network.h"

namespace ocs::worker::engine {

struct ModelCost {
  int64_t flops = 0;
  int64_t params = 0;
  // BatchNorm and ReLU output elements: not FLOPs by the convention above, but counted by
  // ptflops-style tools, whose totals (ResNet-18 1.82 G, ResNet-50 4.11 G) are flops + this.
  int64_t activation_ops = 0;
};

// The cost of one layer when its weight dimensions are `in_width` and `out_width` channels.
ModelCost LayerCost(const Layer& layer, int in_width, int out_width);

// The cost of a whole network as built (dense, or resized after pruning), activation_ops included.
ModelCost NetworkCost(const Network& network);

// The cost of `network` if its groups had `widths` channels, without building anything.
class WidthCostModel {
 public:
  WidthCostModel(const Network& network, const ChannelGroups& groups);

  ModelCost Cost(const std::vector<int>& widths) const;
  // FLOPs of one layer when the groups have `widths` channels.
  int64_t LayerFlops(int layer, const std::vector<int>& widths) const;
  // FLOPs saved by removing one channel from each group of the dense network.
  std::vector<double> FlopsPerChannel() const;

 private:
  const Network& network_;
  const ChannelGroups& groups_;
};

}  // namespace ocs::worker::engine
