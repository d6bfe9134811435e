#include "worker/engine/regularization.h"

#include <algorithm>

#include <ATen/ATen.h>

namespace ocs::worker::engine {

ChannelRegularizer::ChannelRegularizer(const NetworkModel& model, const ChannelGroups& groups,
                                       const common::Mask& mask) {
  // Channel ids over all groups: group g's channel c is base[g] + c.
  std::vector<int64_t> base(groups.size());
  std::vector<std::vector<uint8_t>> dropped(groups.size());
  for (int g = 0; g < groups.size(); ++g) {
    base[g] = total_channels_;
    total_channels_ += groups.group(g).size;
    dropped[g].assign(groups.group(g).size, groups.group(g).prunable ? 1 : 0);
    for (int c : mask.groups[g].kept) dropped[g][c] = 0;
    for (uint8_t d : dropped[g]) selected_channels_ += d;
  }
  const Network& network = model.network();
  for (int i = 0; i < network.size(); ++i) {
    if (!network.layer(i).has_weights()) continue;
    const LayerChannels& channels = groups.layer_channels(i);
    for (int64_t dim : {0, 1}) {
      const std::vector<DimSegment>& segments = dim == 0 ? channels.out : channels.in;
      if (segments.empty()) continue;
      const at::Tensor& weight = model.tensors(i).weight;
      std::vector<float> selected(weight.size(dim), 0.0f);
      std::vector<int64_t> channel(weight.size(dim), 0);
      bool any = false;
      for (const DimSegment& s : segments) {
        for (int c = 0; c < groups.group(s.group).size; ++c) {
          for (int b = 0; b < s.block; ++b) {
            const int64_t entry = s.offset + int64_t{c} * s.block + b;
            selected[entry] = dropped[s.group][c];
            channel[entry] = base[s.group] + c;
            any = any || dropped[s.group][c];
          }
        }
      }
      if (!any) continue;
      const auto device = weight.device();
      targets_.push_back({weight, dim, at::tensor(selected).to(device),
                          at::tensor(channel, at::kLong).to(device)});
    }
  }
}

at::Tensor ChannelRegularizer::AlongDim(const at::Tensor& values, const Target& target) {
  std::vector<int64_t> shape(target.tensor.dim(), 1);
  shape[target.dim] = values.numel();
  return values.view(shape);
}

void ChannelRegularizer::BuildShrinkOperands() {
  at::NoGradGuard no_grad;
  for (const Target& target : targets_) {
    auto same = std::find_if(shrink_tensors_.begin(), shrink_tensors_.end(),
                             [&](const at::Tensor& t) { return t.is_same(target.tensor); });
    if (same == shrink_tensors_.end()) {
      shrink_tensors_.push_back(target.tensor);
      // zeros_like keeps the tensor's strides (channels-last on a GPU), which the multi-tensor
      // kernels need to treat both as one flat range.
      shrink_counts_.push_back(at::zeros_like(target.tensor));
      same = shrink_tensors_.end() - 1;
    }
    shrink_counts_[same - shrink_tensors_.begin()].add_(
        AlongDim(target.selected, target).to(target.tensor.dtype()));
  }
}

void ChannelRegularizer::ShrinkDecoupled(double lambda, double lr) {
  if (targets_.empty()) return;
  if (shrink_tensors_.empty()) BuildShrinkOperands();
  at::NoGradGuard no_grad;
  // Two operations rather than one addcmul_ of W with itself: no list aliases the one written.
  const std::vector<at::Tensor> decay = at::_foreach_mul(shrink_tensors_, shrink_counts_);
  at::_foreach_add_(shrink_tensors_, decay, -lambda * lr);
}

void ChannelRegularizer::AddGroupLassoGradient(double lambda) {
  if (targets_.empty()) return;
  at::NoGradGuard no_grad;
  const at::Device device = targets_.front().tensor.device();
  // ‖W_c‖₂² summed over every tensor entry that belongs to channel c.
  at::Tensor norm_squared =
      at::zeros({total_channels_}, at::TensorOptions(device).dtype(at::kFloat));
  for (const Target& target : targets_) {
    std::vector<int64_t> others;
    for (int64_t d = 0; d < target.tensor.dim(); ++d) {
      if (d != target.dim) others.push_back(d);
    }
    at::Tensor sums = target.tensor.pow(2);
    if (!others.empty()) sums = sums.sum(others);
    norm_squared.index_add_(0, target.channel, sums.to(at::kFloat));
  }
  const at::Tensor inverse_norm = (norm_squared + 1e-12).rsqrt();
  for (const Target& target : targets_) {
    at::Tensor& grad = const_cast<at::Tensor&>(target.tensor).mutable_grad();
    const at::Tensor scale =
        lambda * target.selected * inverse_norm.index_select(0, target.channel);
    const at::Tensor term = target.tensor * AlongDim(scale, target).to(target.tensor.dtype());
    if (grad.defined()) {
      grad.add_(term);
    } else {
      grad = term.clone();
    }
  }
}

}  // namespace ocs::worker::engine
