#include "worker/train/sgd_step.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace ocs::worker::train {
namespace {

std::vector<at::Tensor> Parameters(uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  std::vector<at::Tensor> params;
  for (std::vector<int64_t> shape : {std::vector<int64_t>{16, 3, 3, 3}, {16}, {10, 16}}) {
    params.push_back(at::randn(shape, generator).requires_grad_(true));
  }
  return params;
}

void SetGradients(std::vector<at::Tensor>& params, int step) {
  at::Generator generator = at::detail::createCPUGenerator(100 + step);
  for (at::Tensor& p : params) p.mutable_grad() = at::randn(p.sizes(), generator);
}

// The multi-tensor step must be torch::optim::SGD's update, bit for bit, across steps (the first
// step creates the momentum buffers) and options.
void ExpectSameAsTorchSgd(torch::optim::SGDOptions options) {
  std::vector<at::Tensor> ours = Parameters(1), theirs = Parameters(1);
  torch::optim::SGD our_optimizer(ours, options), torch_optimizer(theirs, options);
  for (int step = 0; step < 4; ++step) {
    SetGradients(ours, step);
    SetGradients(theirs, step);
    const double lr = 0.1 / (step + 1);
    MultiTensorSgdStep(our_optimizer, lr);
    static_cast<torch::optim::SGDOptions&>(torch_optimizer.param_groups()[0].options()).lr(lr);
    torch_optimizer.step();
    for (size_t i = 0; i < ours.size(); ++i) {
      EXPECT_TRUE(at::equal(ours[i], theirs[i])) << "step " << step << " tensor " << i;
    }
  }
}

TEST(MultiTensorSgdStepTest, MatchesTorchSgdWithNesterovMomentumAndWeightDecay) {
  ExpectSameAsTorchSgd(
      torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(5e-4));
}

TEST(MultiTensorSgdStepTest, MatchesTorchSgdWithPlainMomentum) {
  ExpectSameAsTorchSgd(torch::optim::SGDOptions(0.1).momentum(0.9));
}

TEST(MultiTensorSgdStepTest, MatchesTorchSgdWithoutMomentum) {
  ExpectSameAsTorchSgd(torch::optim::SGDOptions(0.1).weight_decay(1e-4));
}

TEST(MultiTensorSgdStepTest, SkipsParametersWithoutGradient) {
  std::vector<at::Tensor> params = Parameters(2);
  const at::Tensor before = params[1].detach().clone();
  torch::optim::SGD optimizer(params, torch::optim::SGDOptions(0.1).momentum(0.9));
  SetGradients(params, 0);
  params[1].mutable_grad().reset();
  MultiTensorSgdStep(optimizer, 0.1);
  EXPECT_TRUE(at::equal(params[1], before));
  EXPECT_FALSE(at::equal(params[0], Parameters(2)[0]));
}

}  // namespace
}  // namespace ocs::worker::train
