// The sub-network at a FLOPs target (DESIGN.md, step 4): channel importances are ranked globally
// and a threshold is lowered through them until the pruned network's FLOPs reduction reaches the
// target. Each group keeps at least its min_kept channels; `roundTo` keeps widths multiples of
// it. Where channel costs are too coarse to land within the tolerance, a short local search
// moves single groups by one step (keeping each group's own ranking) to close the gap. Costs come
// from WidthCostModel, updated incrementally per channel, so a search over ResNet-50 takes
// milliseconds and can run every epoch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mask.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/network.h"

namespace ocs::worker::engine {

struct SearchOptions {
  double target_reduction = 0.5;  // fraction of dense FLOPs to remove
  int round_to = 1;
  double tolerance = 5e-4;
};

struct SearchResult {
  common::Mask mask;  // kept channels per group
  std::vector<int> widths;
  int64_t dense_flops = 0;
  int64_t pruned_flops = 0;
  int64_t dense_params = 0;
  int64_t pruned_params = 0;
  double achieved_reduction = 0;
  double max_reduction = 0;  // with every prunable group at its floor
  bool reached = false;      // |achieved − target| <= tolerance
  std::string note;          // why the target was not reached
};

// `importance[g][c]` is the saliency of channel c of group g (entries of groups that are not
// prunable are ignored). InvalidArgument when the shapes do not match the groups.
absl::StatusOr<SearchResult> SearchSubnetwork(const Network& network, const ChannelGroups& groups,
                                              const std::vector<std::vector<float>>& importance,
                                              const SearchOptions& options);

}  // namespace ocs::worker::engine
