#include "worker/engine/channel_groups.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ocs::worker::engine {
namespace {

// `count` consecutive channels of a space, each `block` entries wide in the layer's dimension.
struct SpaceSegment {
  int space = 0;
  int count = 0;
  int block = 1;
};
using Segments = std::vector<SpaceSegment>;

class UnionFind {
 public:
  int Add() {
    parent_.push_back(static_cast<int>(parent_.size()));
    return parent_.back();
  }
  int Find(int x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  // The smaller index stays root, so a group is named after its first producer.
  void Union(int a, int b) {
    a = Find(a), b = Find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }

 private:
  std::vector<int> parent_;
};

// The spaces of one network, and which layer dimensions they run through.
struct SpaceGraph {
  std::vector<int> size;
  std::vector<std::string> name;
  std::vector<std::string> fixed;  // why a space may not be pruned; "" when it may
  UnionFind sets;
  std::vector<Segments> outputs;  // per layer: its output channels
  std::vector<Segments> out_dims, in_dims;

  int NewSpace(int channels, const std::string& producer) {
    size.push_back(channels);
    name.push_back(producer);
    fixed.emplace_back();
    return sets.Add();
  }
  void Fix(const Segments& segments, const std::string& reason) {
    for (const SpaceSegment& s : segments) {
      if (fixed[s.space].empty()) fixed[s.space] = reason;
    }
  }
};

bool SameLayout(const Segments& a, const Segments& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].count != b[i].count || a[i].block != b[i].block) return false;
  }
  return true;
}

absl::Status TraceLayer(const Network& network, int i, SpaceGraph* graph) {
  const Layer& layer = network.layer(i);
  const Segments in = layer.inputs.empty() ? Segments{} : graph->outputs[layer.inputs[0]];
  Segments& out = graph->outputs[i];
  switch (layer.kind) {
    case LayerKind::kInput: {
      const int space = graph->NewSpace(layer.output_shape.channels, layer.name);
      out = {{space, layer.output_shape.channels, 1}};
      graph->Fix(out, "network input");
      break;
    }
    case LayerKind::kConv:
      if (layer.is_depthwise()) {  // one filter per channel: output channel c is input channel c
        out = in;
        graph->out_dims[i] = in;
        break;
      }
      out = {{graph->NewSpace(layer.output_shape.channels, layer.name), layer.output_shape.channels,
              1}};
      graph->out_dims[i] = out;
      graph->in_dims[i] = in;
      if (layer.groups > 1) {  // general grouped convs tie channels across groups: left alone
        const std::string reason = absl::StrCat("grouped convolution ", layer.name);
        graph->Fix(out, reason);
        graph->Fix(in, reason);
      }
      break;
    case LayerKind::kLinear:
      out = {{graph->NewSpace(layer.output_shape.channels, layer.name), layer.output_shape.channels,
              1}};
      graph->out_dims[i] = out;
      graph->in_dims[i] = in;
      break;
    case LayerKind::kBatchNorm:
      out = in;
      graph->out_dims[i] = in;
      break;
    case LayerKind::kRelu:
    case LayerKind::kRelu6:
    case LayerKind::kMaxPool:
    case LayerKind::kAvgPool:
    case LayerKind::kGlobalAvgPool:
      out = in;
      break;
    case LayerKind::kAdd:
      out = in;
      for (int operand : layer.inputs) {
        const Segments& other = graph->outputs[operand];
        if (!SameLayout(in, other)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "layer ", layer.name, ": residual operands lay out their channels differently"));
        }
        for (size_t s = 0; s < in.size(); ++s) graph->sets.Union(in[s].space, other[s].space);
      }
      break;
    case LayerKind::kConcat:
      out.clear();
      for (int operand : layer.inputs) {
        const Segments& part = graph->outputs[operand];
        out.insert(out.end(), part.begin(), part.end());
      }
      break;
    case LayerKind::kFlatten:
      out = in;
      for (SpaceSegment& s : out) s.block *= layer.input_shape.spatial();
      break;
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int64_t> KeptEntries(const std::vector<DimSegment>& segments,
                                 const common::Mask& mask) {
  std::vector<int64_t> entries;
  for (const DimSegment& segment : segments) {
    for (int c : mask.groups[segment.group].kept) {
      for (int b = 0; b < segment.block; ++b) {
        entries.push_back(segment.offset + static_cast<int64_t>(c) * segment.block + b);
      }
    }
  }
  return entries;
}

int MinKeptChannels(int channels, double layer_prune_limit) {
  const double prunable = channels * layer_prune_limit * (1.0 - std::exp(-channels));
  return channels - static_cast<int>(std::floor(prunable));
}

absl::StatusOr<ChannelGroups> ChannelGroups::Derive(const Network& network,
                                                    const GroupingOptions& options) {
  const int n = network.size();
  SpaceGraph graph;
  graph.outputs.resize(n);
  graph.out_dims.resize(n);
  graph.in_dims.resize(n);
  for (int i = 0; i < n; ++i) {
    if (absl::Status status = TraceLayer(network, i, &graph); !status.ok()) return status;
  }
  graph.Fix(graph.outputs[network.output()], "network output");
  for (const std::string& name : options.ignored_layers) {
    const std::optional<int> layer = network.FindLayer(name);
    if (!layer || graph.out_dims[*layer].empty()) {
      std::vector<std::string> names;
      for (const Layer& l : network.layers()) {
        if (l.kind == LayerKind::kConv || l.kind == LayerKind::kLinear) names.push_back(l.name);
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.pruning.ignoredLayers: \"", name,
          "\" is not a conv or linear layer of this model (", names.size(), " are: ",
          absl::StrJoin(names.begin(), names.begin() + std::min<size_t>(names.size(), 8), ", "),
          names.size() > 8 ? ", ...; see `ocs-worker model inspect`)" : ")"));
    }
    graph.Fix(graph.out_dims[*layer], absl::StrCat("ignored layer ", name));
  }

  ChannelGroups result;
  // Groups in order of their first space, so group ids follow the network's order.
  std::vector<int> group_of_root(graph.size.size(), -1);
  std::vector<int> group_of_space(graph.size.size());
  for (size_t s = 0; s < graph.size.size(); ++s) {
    const int root = graph.sets.Find(static_cast<int>(s));
    if (group_of_root[root] < 0) {
      group_of_root[root] = result.size();
      ChannelGroup group;
      group.name = graph.name[root];
      group.size = graph.size[root];
      result.groups_.push_back(std::move(group));
    }
    const int g = group_of_space[s] = group_of_root[root];
    ChannelGroup& group = result.groups_[g];
    if (!graph.fixed[s].empty() && group.prunable) {
      group.prunable = false;
      group.fixed_reason = graph.fixed[s];
    }
  }
  for (ChannelGroup& group : result.groups_) {
    group.min_kept =
        group.prunable ? MinKeptChannels(group.size, options.layer_prune_limit) : group.size;
  }

  auto to_dim = [&](const Segments& segments) {
    std::vector<DimSegment> dims;
    int offset = 0;
    for (const SpaceSegment& s : segments) {
      dims.push_back({group_of_space[s.space], offset, s.block});
      offset += s.count * s.block;
    }
    return dims;
  };
  result.layers_.resize(n);
  result.layers_of_group_.resize(result.groups_.size());
  for (int i = 0; i < n; ++i) {
    LayerChannels& channels = result.layers_[i];
    channels.out = to_dim(graph.out_dims[i]);
    channels.in = to_dim(graph.in_dims[i]);
    const MemberRole out_role = network.layer(i).kind == LayerKind::kBatchNorm
                                    ? MemberRole::kBatchNorm
                                    : MemberRole::kProducer;
    for (const DimSegment& d : channels.out)
      result.groups_[d.group].members.push_back({i, out_role, d});
    for (const DimSegment& d : channels.in) {
      result.groups_[d.group].members.push_back({i, MemberRole::kConsumer, d});
    }
    for (const auto* dims : {&channels.out, &channels.in}) {
      for (const DimSegment& d : *dims) {
        std::vector<int>& layers = result.layers_of_group_[d.group];
        if (layers.empty() || layers.back() != i) layers.push_back(i);
      }
    }
  }
  return result;
}

std::vector<int> ChannelGroups::sizes() const {
  std::vector<int> sizes;
  for (const ChannelGroup& group : groups_) sizes.push_back(group.size);
  return sizes;
}

int ChannelGroups::OutWidth(int layer, const std::vector<int>& widths) const {
  int width = 0;
  for (const DimSegment& d : layers_[layer].out) width += widths[d.group] * d.block;
  return width;
}

int ChannelGroups::InWidth(int layer, const std::vector<int>& widths) const {
  int width = 0;
  for (const DimSegment& d : layers_[layer].in) width += widths[d.group] * d.block;
  return width;
}

Network ChannelGroups::Resize(const Network& network, const std::vector<int>& widths) const {
  Network resized = network;
  std::vector<Layer>& layers = resized.layers_;
  for (int i = 1; i < resized.size(); ++i) {
    Layer& layer = layers[i];
    layer.input_shape = layers[layer.inputs[0]].output_shape;
    int& channels = layer.output_shape.channels;
    switch (layer.kind) {
      case LayerKind::kConv:
        if (network.layer(i).is_depthwise()) {
          channels = layer.groups = layer.input_shape.channels;
        } else {
          channels = OutWidth(i, widths);
        }
        break;
      case LayerKind::kLinear:
        channels = OutWidth(i, widths);
        break;
      case LayerKind::kConcat:
        channels = 0;
        for (int operand : layer.inputs) channels += layers[operand].output_shape.channels;
        break;
      case LayerKind::kFlatten:
        channels = layer.input_shape.channels * layer.input_shape.spatial();
        break;
      default:  // BatchNorm, activations, pooling, Add keep their input's channels
        channels = layer.input_shape.channels;
        break;
    }
  }
  return resized;
}

}  // namespace ocs::worker::engine
