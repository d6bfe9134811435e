// Coupled channels, derived from the network's structure: a conv's output channels, the
// BatchNorms and activations they flow through, every consumer's input slice, depthwise convs
// (input tied to output), residual additions (all operands tied), concatenations (offsets) and
// flatten->linear (a channel is a block of features) all end up in one ChannelGroup, which is
// pruned as a unit.
//
// Derivation: every producer (conv with groups == 1, linear, the input) creates a "channel space";
// each layer's output is a list of segments of spaces (concat joins lists, flatten widens each
// channel into a block); an addition unions its operands' spaces. The union classes are the groups.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mask.h"
#include "worker/engine/network.h"

namespace ocs::worker::engine {

// A run of one tensor dimension of a layer that holds the channels of one group: entries
// [offset + c*block, offset + (c+1)*block) belong to group channel c.
struct DimSegment {
  int group = 0;
  int offset = 0;
  int block = 1;
};

// How a layer's weights index channels: `out` is dimension 0 of conv/linear weights (and the
// BatchNorm vectors, and a depthwise conv's tied channels); `in` is dimension 1 of conv/linear.
struct LayerChannels {
  std::vector<DimSegment> out;
  std::vector<DimSegment> in;
};

enum class MemberRole { kProducer, kBatchNorm, kConsumer };

// One place where a group's channels appear in the weights.
struct GroupMember {
  int layer = 0;
  MemberRole role = MemberRole::kProducer;
  DimSegment segment;
};

struct ChannelGroup {
  std::string name;  // the first layer that produces it, e.g. "stage_1.0.conv_a"
  int size = 0;
  bool prunable = true;
  std::string fixed_reason;  // why not prunable: "network input", "network output", ...
  int min_kept = 0;          // from the layer prune limit; == size when not prunable
  std::vector<GroupMember> members;
};

struct GroupingOptions {
  double layer_prune_limit = 0.75;
  std::vector<std::string> ignored_layers;  // their output channels are never pruned
};

class ChannelGroups {
 public:
  // InvalidArgument for an ignored layer that does not exist or that produces no channels.
  static absl::StatusOr<ChannelGroups> Derive(const Network& network,
                                              const GroupingOptions& options);

  const std::vector<ChannelGroup>& groups() const { return groups_; }
  const ChannelGroup& group(int g) const { return groups_[g]; }
  int size() const { return static_cast<int>(groups_.size()); }
  const LayerChannels& layer_channels(int layer) const { return layers_[layer]; }
  std::vector<int> sizes() const;

  // The layers whose weights a group touches (each once), for incremental FLOPs updates.
  const std::vector<int>& layers_of_group(int g) const { return layers_of_group_[g]; }

  // Width of a layer's out / in dimension when the groups have `widths` channels (0 when the
  // layer has no such dimension).
  int OutWidth(int layer, const std::vector<int>& widths) const;
  int InWidth(int layer, const std::vector<int>& widths) const;

  // The network with every layer resized to group widths `widths` (the pruned architecture).
  Network Resize(const Network& network, const std::vector<int>& widths) const;

 private:
  std::vector<ChannelGroup> groups_;
  std::vector<LayerChannels> layers_;
  std::vector<std::vector<int>> layers_of_group_;
};

// The entries of a layer dimension that a mask keeps: for each segment, the kept channels of its
// group, each widened to its block of entries, in order.
std::vector<int64_t> KeptEntries(const std::vector<DimSegment>& segments, const common::Mask& mask);

// C − ⌊C · limit · (1 − e^(−C))⌋: the fewest channels a group of C may keep.
int MinKeptChannels(int channels, double layer_prune_limit);

}  // namespace ocs::worker::engine
