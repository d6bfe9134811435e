// The exported TorchScript loads in Python (Debian's python3-torch, the same LibTorch version) and
// computes what the live pruned model computes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "tests/support/subprocess.h"
#include "worker/engine/export.h"
#include "worker/engine/flops_target_search.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/surgery.h"

namespace ocs::testing {
namespace {

using namespace ocs::worker::engine;

TEST(PythonLoadTest, TorchJitLoadRunsThePrunedModel) {
  const Network network = *BuildModel("resnet20", 10, {1, 28, 28});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 3);
  const auto result = *SearchSubnetwork(network, groups, GroupSaliency(model, groups, true), {0.5});
  ASSERT_TRUE(PruneModel(model, groups, result.mask).ok());
  model.eval();
  const std::string path = ::testing::TempDir() + "/python-load.pt";
  ASSERT_TRUE(ExportTorchScript(model, path).ok());

  // A deterministic input both sides can build: 0, 0.001, 0.002, ... reshaped.
  const at::Tensor x = at::arange(2 * 28 * 28, at::kFloat).mul(0.001).view({2, 1, 28, 28});
  const at::Tensor expected = model.forward(x);
  const std::string script = absl::StrCat(
      "import torch\n"
      "m = torch.jit.load('",
      path,
      "')\n"
      "m.eval()\n"
      "x = torch.arange(2 * 28 * 28, dtype=torch.float32).mul(0.001).view(2, 1, 28, 28)\n"
      "print(' '.join('%.9g' % v for v in m(x).flatten().tolist()))\n");
  // Debian's python3-torch by default; OCS_PYTHON names another (a GPU host's PyTorch).
  const char* python = std::getenv("OCS_PYTHON");
  const CommandResult run = RunCommand({python ? python : "/usr/bin/python3", "-c", script});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::istringstream values(run.out);
  const at::Tensor flat = expected.flatten();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    double value = 0;
    ASSERT_TRUE(values >> value) << run.out;
    EXPECT_NEAR(value, flat[i].item<double>(), 1e-5) << i;
  }
}

}  // namespace
}  // namespace ocs::testing
