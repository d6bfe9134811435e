#include "worker/engine/group_saliency.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

#include "worker/engine/flops.h"

namespace ocs::worker::engine {
namespace {

// Σ w² over every dimension but `dim`, as a CPU float vector.
std::vector<float> SquaredSums(const at::Tensor& weight, int64_t dim) {
  std::vector<int64_t> others;
  for (int64_t d = 0; d < weight.dim(); ++d) {
    if (d != dim) others.push_back(d);
  }
  at::Tensor sums = weight.detach().to(at::kFloat).pow(2);
  if (!others.empty()) sums = sums.sum(others);
  sums = sums.to(at::kCPU).contiguous();
  return std::vector<float>(sums.data_ptr<float>(), sums.data_ptr<float>() + sums.numel());
}

// Adds one member's term for every channel of its group to `sum`.
void AddMemberTerm(const GroupMember& member, const LayerTensors& tensors, int group_size,
                   std::vector<float>* sum) {
  const at::Tensor& w = tensors.weight;
  const DimSegment& s = member.segment;
  if (member.role == MemberRole::kBatchNorm) {
    const std::vector<float> gamma_squared = SquaredSums(w, 0);
    for (int c = 0; c < group_size; ++c) (*sum)[c] += gamma_squared[s.offset + c];
    return;
  }
  const int64_t dim = member.role == MemberRole::kProducer ? 0 : 1;
  const std::vector<float> sums = SquaredSums(w, dim);
  // Entries of the slice of one channel: the weight's size without `dim`, times the block.
  const double slice_numel = static_cast<double>(w.numel() / w.size(dim)) * s.block;
  const float norm = static_cast<float>(1.0 / std::sqrt(slice_numel));
  for (int c = 0; c < group_size; ++c) {
    float channel = 0;
    for (int b = 0; b < s.block; ++b) channel += sums[s.offset + c * s.block + b];
    (*sum)[c] += channel * norm;
  }
}

void ApplyCostWeighting(const Network& network, const ChannelGroups& groups,
                        std::vector<std::vector<float>>* importance) {
  const std::vector<double> cost = WidthCostModel(network, groups).FlopsPerChannel();
  double max_logit = -INFINITY;
  for (int g = 0; g < groups.size(); ++g) {
    if (groups.group(g).prunable) max_logit = std::max(max_logit, cost[g] / 1e6);
  }
  double partition = 0;
  for (int g = 0; g < groups.size(); ++g) {
    if (groups.group(g).prunable) partition += std::exp(cost[g] / 1e6 - max_logit);
  }
  for (int g = 0; g < groups.size(); ++g) {
    if (!groups.group(g).prunable) continue;
    const float weight = static_cast<float>(1.0 - std::exp(cost[g] / 1e6 - max_logit) / partition);
    for (float& value : (*importance)[g]) value *= weight;
  }
}

}  // namespace

std::vector<std::vector<float>> GroupSaliency(const NetworkModel& model,
                                              const ChannelGroups& groups, bool cost_weighting) {
  at::NoGradGuard no_grad;
  std::vector<std::vector<float>> importance(groups.size());
  for (int g = 0; g < groups.size(); ++g) {
    const ChannelGroup& group = groups.group(g);
    importance[g].assign(group.size, 0.0f);
    for (const GroupMember& member : group.members) {
      AddMemberTerm(member, model.tensors(member.layer), group.size, &importance[g]);
    }
    if (!group.members.empty()) {
      for (float& value : importance[g]) value /= static_cast<float>(group.members.size());
    }
  }
  if (cost_weighting) ApplyCostWeighting(model.network(), groups, &importance);
  return importance;
}

}  // namespace ocs::worker::engine
