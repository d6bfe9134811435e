// The optimizer step of the training loop: torch::optim::SGD's update (weight decay, momentum
// without dampening, Nesterov) computed for all parameters at once with multi-tensor (foreach)
// kernels, a handful of kernel launches per step instead of about five per parameter; on a GPU
// at batch 128 those launches, not the arithmetic, set the step time.
#pragma once

#include <vector>

#include <ATen/Tensor.h>
#include <torch/optim/sgd.h>

namespace ocs::worker::train {

// One step with learning rate `lr` and the options of `optimizer`'s first parameter group. The
// momentum buffers live in `optimizer`'s own state (created as zeros, which equals SGD's first
// step), where checkpoints and the prune's surgery find them. Parameters without a gradient are
// left alone; gradients are used as scratch space.
void MultiTensorSgdStep(torch::optim::SGD& optimizer, double lr);

// Drops the gradients (no kernels: backward allocates fresh ones).
void ClearGradients(const std::vector<at::Tensor>& parameters);

}  // namespace ocs::worker::train
