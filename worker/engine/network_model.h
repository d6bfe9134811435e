// The LibTorch model of a Network: parameters and buffers registered under the layers' PyTorch
// names (so named_parameters() reads "stage_1.0.conv_a.weight"), and a forward pass that runs
// the layers in order. Surgery (surgery.h) shrinks these tensors in place and swaps in the
// resized Network, so the optimizer keeps the same parameter objects.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/Tensor.h>
#include <torch/nn/module.h>

#include "worker/engine/network.h"

namespace ocs::worker::engine {

// The tensors of one layer; undefined where the layer has none.
struct LayerTensors {
  at::Tensor weight;  // conv [out, in/groups, k, k], linear [out, in], BatchNorm γ [C]
  at::Tensor bias;    // conv/linear bias, BatchNorm β
  at::Tensor running_mean;
  at::Tensor running_var;
};

class NetworkModel : public torch::nn::Module {
 public:
  // Creates the tensors on the CPU, initialised as torchvision does (conv: Kaiming normal,
  // fan-out; BatchNorm: γ = 1, β = 0; linear: U(±1/sqrt(fan_in))), from `seed` alone.
  NetworkModel(Network network, uint64_t seed);

  at::Tensor forward(const at::Tensor& input);
  // forward() that also shows `observe` each layer's first input (layer index, tensor).
  using LayerObserver = std::function<void(int layer, const at::Tensor& input)>;
  at::Tensor ForwardObserved(const at::Tensor& input, const LayerObserver& observe);

  // The BatchNorm running-statistics momentum (PyTorch's 0.1). Re-estimating statistics after
  // the prune sets 1/(k+1) for the k-th batch: a cumulative average.
  void set_batch_norm_momentum(double momentum) { batch_norm_momentum_ = momentum; }

  const Network& network() const { return network_; }
  const LayerTensors& tensors(int layer) const { return tensors_[layer]; }
  LayerTensors& mutable_tensors(int layer) { return tensors_[layer]; }
  // Stores conv weights channels-last (NHWC), the layout GPU convolution kernels prefer; surgery
  // leaves plain contiguous tensors, so call it again after a prune.
  void UseChannelsLast();

  // Installs the resized architecture after the tensors were pruned to it.
  void ReplaceNetwork(Network network) { network_ = std::move(network); }

  static constexpr double kBatchNormMomentum = 0.1;
  static constexpr double kBatchNormEps = 1e-5;

 private:
  torch::nn::Module& ModuleAt(const std::string& path);

  Network network_;
  std::vector<LayerTensors> tensors_;
  double batch_norm_momentum_ = kBatchNormMomentum;
};

}  // namespace ocs::worker::engine
