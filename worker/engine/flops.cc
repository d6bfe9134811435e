#include "worker/engine/flops.h"

namespace ocs::worker::engine {

ModelCost LayerCost(const Layer& layer, int in_width, int out_width) {
  const int64_t out = out_width;
  switch (layer.kind) {
    case LayerKind::kConv: {
      // Depthwise: one k x k filter per channel. Other grouped convs keep their group count.
      const int64_t in_per_group = layer.is_depthwise() ? 1 : in_width / layer.groups;
      const int64_t weights = out * in_per_group * layer.kernel * layer.kernel;
      return {weights * layer.output_shape.spatial(), weights + (layer.bias ? out : 0)};
    }
    case LayerKind::kLinear: {
      const int64_t weights = out * in_width;
      return {weights, weights + (layer.bias ? out : 0)};
    }
    case LayerKind::kBatchNorm:
      return {0, 2 * out};
    default:
      return {};
  }
}

ModelCost NetworkCost(const Network& network) {
  ModelCost total;
  for (const Layer& layer : network.layers()) {
    const ModelCost cost =
        LayerCost(layer, layer.input_shape.channels, layer.output_shape.channels);
    total.flops += cost.flops;
    total.params += cost.params;
    if (layer.kind == LayerKind::kBatchNorm || layer.kind == LayerKind::kRelu ||
        layer.kind == LayerKind::kRelu6) {
      total.activation_ops += int64_t{layer.output_shape.channels} * layer.output_shape.spatial();
    }
  }
  return total;
}

WidthCostModel::WidthCostModel(const Network& network, const ChannelGroups& groups)
    : network_(network), groups_(groups) {}

int64_t WidthCostModel::LayerFlops(int layer, const std::vector<int>& widths) const {
  const Layer& l = network_.layer(layer);
  const int out = groups_.OutWidth(layer, widths);
  const int in = l.is_depthwise() ? out : groups_.InWidth(layer, widths);
  return LayerCost(l, in, out).flops;
}

ModelCost WidthCostModel::Cost(const std::vector<int>& widths) const {
  ModelCost total;
  for (int i = 0; i < network_.size(); ++i) {
    const Layer& layer = network_.layer(i);
    if (!layer.has_weights()) continue;
    const int out = groups_.OutWidth(i, widths);
    const int in = layer.is_depthwise() ? out : groups_.InWidth(i, widths);
    const ModelCost cost = LayerCost(layer, in, out);
    total.flops += cost.flops;
    total.params += cost.params;
  }
  return total;
}

std::vector<double> WidthCostModel::FlopsPerChannel() const {
  std::vector<int> widths = groups_.sizes();
  std::vector<double> saved(widths.size());
  for (int g = 0; g < static_cast<int>(widths.size()); ++g) {
    int64_t before = 0, after = 0;
    for (int layer : groups_.layers_of_group(g)) before += LayerFlops(layer, widths);
    --widths[g];
    for (int layer : groups_.layers_of_group(g)) after += LayerFlops(layer, widths);
    ++widths[g];
    saved[g] = static_cast<double>(before - after);
  }
  return saved;
}

}  // namespace ocs::worker::engine
