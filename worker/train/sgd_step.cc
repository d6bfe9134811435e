#include "worker/train/sgd_step.h"

#include <memory>

#include <ATen/ATen.h>

#include "worker/engine/optimizer_state.h"

namespace ocs::worker::train {

void MultiTensorSgdStep(torch::optim::SGD& optimizer, double lr) {
  auto& group = optimizer.param_groups().front();
  const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
  std::vector<at::Tensor> params, grads, buffers;
  for (const at::Tensor& parameter : group.params()) {
    if (!parameter.grad().defined()) continue;
    params.push_back(parameter);
    grads.push_back(parameter.grad());
    if (options.momentum() == 0) continue;
    auto& slot = optimizer.state()[engine::OptimizerStateKey(parameter)];
    if (!slot) slot = std::make_unique<torch::optim::SGDParamState>();
    auto& state = static_cast<torch::optim::SGDParamState&>(*slot);
    if (!state.momentum_buffer().defined()) state.momentum_buffer(at::zeros_like(parameter));
    buffers.push_back(state.momentum_buffer());
  }
  if (params.empty()) return;
  at::NoGradGuard no_grad;
  if (options.weight_decay() != 0) at::_foreach_add_(grads, params, options.weight_decay());
  std::vector<at::Tensor>* direction = &grads;
  if (options.momentum() != 0) {
    at::_foreach_mul_(buffers, options.momentum());
    at::_foreach_add_(buffers, grads);
    if (options.nesterov()) {
      at::_foreach_add_(grads, buffers, options.momentum());
    } else {
      direction = &buffers;
    }
  }
  at::_foreach_add_(params, *direction, -lr);
}

void ClearGradients(const std::vector<at::Tensor>& parameters) {
  for (const at::Tensor& parameter : parameters) {
    const_cast<at::Tensor&>(parameter).mutable_grad().reset();
  }
}

}  // namespace ocs::worker::train
