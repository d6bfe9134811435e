#include "worker/engine/group_saliency.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

#include "worker/engine/flops.h"

namespace ocs::worker::engine {
namespace {

// Σ w² of each output channel (dim 0) and of each input entry (dim 1) of one weight tensor: once
// per layer, not per group member. Small tensors take one plain loop over their CPU copy, which
// beats the dispatch cost of tensor ops (ResNet-56's whole saliency takes well under 1 ms).
struct SquaredSums {
  std::vector<float> out;
  std::vector<float> in;
};

std::vector<float> ToVector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

SquaredSums LayerSquaredSums(const at::Tensor& weight) {
  // Large tensors (ResNet-50's 3x3 convs): ATen's vectorised, multi-threaded reductions win.
  constexpr int64_t kLargeTensor = 1 << 16;
  if (weight.numel() > kLargeTensor && weight.dim() > 1) {
    const at::Tensor squared = weight.detach().square();
    std::vector<int64_t> not_out = {1}, not_in = {0};
    for (int64_t d = 2; d < squared.dim(); ++d) not_out.push_back(d), not_in.push_back(d);
    return {ToVector(squared.sum(not_out)), ToVector(squared.sum(not_in))};
  }
  const at::Tensor w = weight.detach().to(at::kCPU, at::kFloat).contiguous();
  const int64_t outs = w.size(0), ins = w.dim() > 1 ? w.size(1) : 1;
  const int64_t inner = w.numel() / (outs * ins);
  SquaredSums sums{std::vector<float>(outs, 0.0f), std::vector<float>(ins, 0.0f)};
  const float* p = w.data_ptr<float>();
  for (int64_t o = 0; o < outs; ++o) {
    for (int64_t i = 0; i < ins; ++i, p += inner) {
      float s = 0;
      for (int64_t k = 0; k < inner; ++k) s += p[k] * p[k];
      sums.out[o] += s;
      sums.in[i] += s;
    }
  }
  return sums;
}

// Adds one member's term for every channel of its group to `sum`.
void AddMemberTerm(const GroupMember& member, const at::Tensor& weight, const SquaredSums& sums,
                   int group_size, std::vector<float>* sum) {
  const DimSegment& s = member.segment;
  if (member.role == MemberRole::kBatchNorm) {  // γ²
    for (int c = 0; c < group_size; ++c) (*sum)[c] += sums.out[s.offset + c];
    return;
  }
  const bool producer = member.role == MemberRole::kProducer;
  const std::vector<float>& entries = producer ? sums.out : sums.in;
  // Entries of the slice of one channel: the weight's size without the indexed dim, times block.
  const int64_t dim_size = weight.size(producer ? 0 : 1);
  const double slice_numel = static_cast<double>(weight.numel() / dim_size) * s.block;
  const float norm = static_cast<float>(1.0 / std::sqrt(slice_numel));
  for (int c = 0; c < group_size; ++c) {
    float channel = 0;
    for (int b = 0; b < s.block; ++b) channel += entries[s.offset + c * s.block + b];
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
  const Network& network = model.network();
  std::vector<SquaredSums> layer_sums(network.size());
  for (int i = 0; i < network.size(); ++i) {
    if (network.layer(i).has_weights()) layer_sums[i] = LayerSquaredSums(model.tensors(i).weight);
  }
  std::vector<std::vector<float>> importance(groups.size());
  for (int g = 0; g < groups.size(); ++g) {
    const ChannelGroup& group = groups.group(g);
    importance[g].assign(group.size, 0.0f);
    for (const GroupMember& member : group.members) {
      AddMemberTerm(member, model.tensors(member.layer).weight, layer_sums[member.layer],
                    group.size, &importance[g]);
    }
    if (!group.members.empty()) {
      for (float& value : importance[g]) value /= static_cast<float>(group.members.size());
    }
  }
  if (cost_weighting) ApplyCostWeighting(model.network(), groups, &importance);
  return importance;
}

}  // namespace ocs::worker::engine
