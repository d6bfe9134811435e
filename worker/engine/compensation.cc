#include "worker/engine/compensation.h"

#include <map>

#include <ATen/ATen.h>

namespace ocs::worker::engine {
namespace {

// 1 for every input entry of `layer` that the mask drops.
at::Tensor DroppedInputs(const ChannelGroups& groups, const common::Mask& mask, int layer,
                         int64_t entries) {
  std::vector<float> dropped(entries, 0.0f);
  for (const DimSegment& s : groups.layer_channels(layer).in) {
    const common::GroupMask& group = mask.groups[s.group];
    std::vector<bool> kept(group.size, false);
    for (int c : group.kept) kept[c] = true;
    for (int c = 0; c < group.size; ++c) {
      if (kept[c]) continue;
      for (int b = 0; b < s.block; ++b) dropped[s.offset + c * s.block + b] = 1.0f;
    }
  }
  return at::tensor(dropped);
}

// The only layer reading `layer`'s output, when that is a BatchNorm; -1 otherwise.
int FollowingBatchNorm(const Network& network, int layer) {
  const std::vector<int> consumers = network.Consumers(layer);
  if (consumers.size() == 1 && network.layer(consumers[0]).kind == LayerKind::kBatchNorm) {
    return consumers[0];
  }
  return -1;
}

}  // namespace

Compensation MeasureCompensation(NetworkModel& model, const ChannelGroups& groups,
                                 const common::Mask& mask, int batches,
                                 const std::function<at::Tensor(int)>& next_batch) {
  const Network& network = model.network();
  std::map<int, at::Tensor> dropped;  // consumer layer -> dropped input entries
  for (int i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    const bool consumer =
        (layer.kind == LayerKind::kConv && !layer.is_depthwise() && layer.groups == 1) ||
        layer.kind == LayerKind::kLinear;
    if (!consumer) continue;
    at::Tensor d = DroppedInputs(groups, mask, i, model.tensors(i).weight.size(1));
    if (d.sum().item<float>() > 0) dropped[i] = d;
  }
  std::map<int, at::Tensor> mean_sum;  // consumer -> Σ over batches of its inputs' channel means
  const bool was_training = model.is_training();
  model.eval();
  {
    at::NoGradGuard no_grad;
    for (int k = 0; k < batches; ++k) {
      model.ForwardObserved(next_batch(k), [&](int layer, const at::Tensor& input) {
        if (!dropped.count(layer)) return;
        at::Tensor means = input.dim() == 4 ? input.mean({0, 2, 3}) : input.mean(0);
        means = means.to(at::kCPU, at::kFloat);
        auto [it, fresh] = mean_sum.emplace(layer, means);
        if (!fresh) it->second += means;
      });
    }
  }
  model.train(was_training);
  Compensation compensation;
  for (const auto& [layer, d] : dropped) {
    const at::Tensor mean = mean_sum.at(layer) / batches;
    const at::Tensor w = model.tensors(layer).weight.detach().to(at::kCPU, at::kFloat);
    // Σ over kernel positions of W[o, e, ·], times the mean of removed input e, summed over e.
    const at::Tensor per_entry = w.dim() == 4 ? w.sum({2, 3}) : w;
    const at::Tensor shift = per_entry.matmul(mean * d);
    // The consumer loses pruned outputs too: keep the shifts of the outputs that stay.
    const at::Tensor kept =
        at::tensor(KeptEntries(groups.layer_channels(layer).out, mask), at::kLong);
    compensation.shifts.emplace_back(layer, shift.index_select(0, kept));
  }
  return compensation;
}

int ApplyCompensation(NetworkModel& model, const Compensation& compensation) {
  at::NoGradGuard no_grad;
  int applied = 0;
  for (const auto& [layer, shift] : compensation.shifts) {
    LayerTensors& t = model.mutable_tensors(layer);
    if (t.bias.defined()) {
      t.bias.add_(shift.to(t.bias.device(), t.bias.scalar_type()));
      ++applied;
      continue;
    }
    const int bn = FollowingBatchNorm(model.network(), layer);
    if (bn < 0) continue;
    at::Tensor& running_mean = model.mutable_tensors(bn).running_mean;
    running_mean.sub_(shift.to(running_mean.device(), running_mean.scalar_type()));
    ++applied;
  }
  return applied;
}

void ReestimateBatchNorm(NetworkModel& model, int batches,
                         const std::function<at::Tensor(int)>& next_batch) {
  at::NoGradGuard no_grad;
  const Network& network = model.network();
  for (int i = 0; i < network.size(); ++i) {
    if (network.layer(i).kind != LayerKind::kBatchNorm) continue;
    model.mutable_tensors(i).running_mean.zero_();
    model.mutable_tensors(i).running_var.fill_(1.0);
  }
  const bool was_training = model.is_training();
  model.train(true);
  for (int k = 0; k < batches; ++k) {
    model.set_batch_norm_momentum(1.0 / (k + 1));
    model.forward(next_batch(k));
  }
  model.set_batch_norm_momentum(NetworkModel::kBatchNormMomentum);
  model.train(was_training);
}

}  // namespace ocs::worker::engine
