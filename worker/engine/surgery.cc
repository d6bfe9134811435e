#include "worker/engine/surgery.h"

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include "absl/strings/str_cat.h"
#include "worker/engine/optimizer_state.h"

namespace ocs::worker::engine {
namespace {

at::Tensor KeptEntryTensor(const std::vector<DimSegment>& segments, const common::Mask& mask) {
  return at::tensor(KeptEntries(segments, mask), at::kLong);
}

// Shrinks `tensor` to `out` along dim 0 and `in` along dim 1 (either may be undefined).
at::Tensor Select(const at::Tensor& tensor, const at::Tensor& out, const at::Tensor& in) {
  at::Tensor result = tensor;
  if (out.defined()) result = result.index_select(0, out.to(tensor.device()));
  if (in.defined()) result = result.index_select(1, in.to(tensor.device()));
  return result.contiguous();
}

void Shrink(at::Tensor& tensor, const at::Tensor& out, const at::Tensor& in,
            const StateCarrier& carry) {
  if (!tensor.defined()) return;
  const TensorSelector select = [&](const at::Tensor& t) { return Select(t, out, in); };
  if (carry && tensor.requires_grad()) carry(tensor, select);
  tensor.set_data(select(tensor));
  if (tensor.requires_grad()) tensor.mutable_grad() = at::Tensor();  // shapes changed
}

}  // namespace

absl::Status PruneModel(NetworkModel& model, const ChannelGroups& groups, const common::Mask& mask,
                        const StateCarrier& carry) {
  if (absl::Status fits = common::CheckMaskFitsModel(mask, groups.sizes()); !fits.ok()) {
    return fits;
  }
  const Network& network = model.network();
  std::vector<int> widths;
  for (const common::GroupMask& group : mask.groups) {
    widths.push_back(static_cast<int>(group.kept.size()));
  }
  at::NoGradGuard no_grad;
  for (int i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    if (!layer.has_weights()) continue;
    const LayerChannels& channels = groups.layer_channels(i);
    const bool out_changes = groups.OutWidth(i, widths) != layer.output_shape.channels;
    const bool in_changes =
        !channels.in.empty() && groups.InWidth(i, widths) != layer.input_shape.channels;
    if (!out_changes && !in_changes) continue;
    const at::Tensor out = out_changes ? KeptEntryTensor(channels.out, mask) : at::Tensor();
    const at::Tensor in = in_changes ? KeptEntryTensor(channels.in, mask) : at::Tensor();
    LayerTensors& t = model.mutable_tensors(i);
    Shrink(t.weight, out, in, carry);
    Shrink(t.bias, out, at::Tensor(), carry);
    Shrink(t.running_mean, out, at::Tensor(), carry);
    Shrink(t.running_var, out, at::Tensor(), carry);
  }
  model.ReplaceNetwork(groups.Resize(network, widths));
  return absl::OkStatus();
}

StateCarrier CarryOptimizerState(torch::optim::Optimizer& optimizer) {
  return [&optimizer](const at::Tensor& parameter, const TensorSelector& select) {
    // LibTorch keys optimizer state by the parameter's TensorImpl, which set_data() keeps.
    auto& state = optimizer.state();
    const auto it = state.find(OptimizerStateKey(parameter));
    if (it == state.end()) return;
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
      if (sgd->momentum_buffer().defined()) sgd->momentum_buffer(select(sgd->momentum_buffer()));
    }
  };
}

}  // namespace ocs::worker::engine
