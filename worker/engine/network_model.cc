#include "worker/engine/network_model.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_split.h"

namespace ocs::worker::engine {
namespace {

at::Tensor RunLayer(const Layer& layer, const LayerTensors& t, const std::vector<at::Tensor>& in,
                    bool training, double batch_norm_momentum) {
  const at::Tensor& x = in[0];
  const int64_t k = layer.kernel, s = layer.stride, p = layer.padding;
  switch (layer.kind) {
    case LayerKind::kInput:
      return x;
    case LayerKind::kConv:
      return at::conv2d(x, t.weight, t.bias, {s, s}, {p, p}, {1, 1}, layer.groups);
    case LayerKind::kBatchNorm:
      return at::batch_norm(x, t.weight, t.bias, t.running_mean, t.running_var, training,
                            batch_norm_momentum, NetworkModel::kBatchNormEps,
                            /*cudnn_enabled=*/true);
    case LayerKind::kRelu:
      return at::relu(x);
    case LayerKind::kRelu6:
      return at::hardtanh(x, 0.0, 6.0);
    case LayerKind::kMaxPool:
      return at::max_pool2d(x, {k, k}, {s, s}, {p, p});
    case LayerKind::kAvgPool:
      return at::avg_pool2d(x, {k, k}, {s, s}, {p, p});
    case LayerKind::kGlobalAvgPool:
      return at::adaptive_avg_pool2d(x, {1, 1});
    case LayerKind::kAdd: {
      at::Tensor sum = x;
      for (size_t i = 1; i < in.size(); ++i) sum = sum + in[i];
      return sum;
    }
    case LayerKind::kConcat:
      return at::cat(in, 1);
    case LayerKind::kFlatten:
      return at::flatten(x, 1);
    case LayerKind::kLinear:
      return at::linear(x, t.weight, t.bias);
  }
  return x;
}

}  // namespace

NetworkModel::NetworkModel(Network network, uint64_t seed)
    : network_(std::move(network)), tensors_(network_.size()) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  at::NoGradGuard no_grad;
  for (int i = 0; i < network_.size(); ++i) {
    const Layer& layer = network_.layer(i);
    if (!layer.has_weights()) continue;
    const int64_t out = layer.output_shape.channels, in = layer.input_shape.channels;
    torch::nn::Module& module = ModuleAt(layer.name);
    LayerTensors& t = tensors_[i];
    switch (layer.kind) {
      case LayerKind::kConv: {
        const int64_t k = layer.kernel;
        t.weight = at::empty({out, in / layer.groups, k, k});
        t.weight.normal_(0.0, std::sqrt(2.0 / static_cast<double>(out * k * k)), generator);
        if (layer.bias) t.bias = at::zeros({out});
        break;
      }
      case LayerKind::kLinear: {
        const double bound = 1.0 / std::sqrt(static_cast<double>(in));
        t.weight = at::empty({out, in}).uniform_(-bound, bound, generator);
        if (layer.bias) t.bias = at::empty({out}).uniform_(-bound, bound, generator);
        break;
      }
      case LayerKind::kBatchNorm:
        t.weight = at::ones({out});
        t.bias = at::zeros({out});
        t.running_mean = module.register_buffer("running_mean", at::zeros({out}));
        t.running_var = module.register_buffer("running_var", at::ones({out}));
        break;
      default:
        break;
    }
    t.weight = module.register_parameter("weight", t.weight);
    if (t.bias.defined()) t.bias = module.register_parameter("bias", t.bias);
  }
}

void NetworkModel::UseChannelsLast() {
  at::NoGradGuard no_grad;
  for (int i = 0; i < network_.size(); ++i) {
    at::Tensor& weight = tensors_[i].weight;
    if (network_.layer(i).kind == LayerKind::kConv) {
      weight.set_data(weight.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }
}

torch::nn::Module& NetworkModel::ModuleAt(const std::string& path) {
  torch::nn::Module* module = this;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    const std::string name(part);
    auto children = module->named_children();
    if (const auto* child = children.find(name)) {
      module = child->get();
    } else {
      module = module->register_module(name, std::make_shared<torch::nn::Module>(name)).get();
    }
  }
  return *module;
}

at::Tensor NetworkModel::forward(const at::Tensor& input) {
  return ForwardObserved(input, nullptr);
}

at::Tensor NetworkModel::ForwardObserved(const at::Tensor& input, const LayerObserver& observe) {
  std::vector<at::Tensor> outputs(network_.size());
  outputs[0] = input;
  std::vector<at::Tensor> operands;
  for (int i = 1; i < network_.size(); ++i) {
    const Layer& layer = network_.layer(i);
    operands.clear();
    for (int j : layer.inputs) operands.push_back(outputs[j]);
    if (observe) observe(i, operands[0]);
    outputs[i] = RunLayer(layer, tensors_[i], operands, is_training(), batch_norm_momentum_);
  }
  return outputs.back();
}

}  // namespace ocs::worker::engine
