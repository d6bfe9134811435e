// Group saliency (p = 2), per channel c of a group: the mean over the group's members of
//   producer conv/linear (and depthwise conv) filter c:  Σ w² / sqrt(numel of the filter)
//                                                        = Σ w² / sqrt(fan_in · kh · kw)
//   consumer conv/linear input slice of c:               Σ w² / sqrt(numel of the slice)
//                                                        = Σ w² / sqrt(out · kh · kw · block)
//   BatchNorm:                                           γ_c²
// (block > 1 only where a flattened channel feeds a linear layer as several features.)
// Optional FLOPs-cost weighting: imp ← imp · (1 − softmax_g(cost_g / 1e6)), cost_g being the FLOPs
// one channel of group g costs, the softmax taken over the prunable groups.
#pragma once

#include <vector>

#include "worker/engine/channel_groups.h"
#include "worker/engine/network_model.h"

namespace ocs::worker::engine {

// importance[g][c] for every group (prunable or not), computed on the CPU.
std::vector<std::vector<float>> GroupSaliency(const NetworkModel& model,
                                              const ChannelGroups& groups, bool cost_weighting);

}  // namespace ocs::worker::engine
