// The model a user gets: the exported TorchScript, and its frozen copy from `ocs-worker model
// freeze`, load in Python (Debian's python3-torch, the same LibTorch version) and compute what the
// live pruned model computes; bad input to the freeze is refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

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
using ::testing::HasSubstr;

// Debian's python3-torch by default; OCS_PYTHON names another (a GPU host's PyTorch).
std::string Python() {
  const char* python = std::getenv("OCS_PYTHON");
  return python ? python : "/usr/bin/python3";
}

// A pruned ResNet-20 for 1×28×28 inputs, exported to model.pt in its own folder.
class ExportedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ChannelGroups groups = *ChannelGroups::Derive(network_, {});
    const auto result =
        *SearchSubnetwork(network_, groups, GroupSaliency(model_, groups, true), {0.5});
    ASSERT_TRUE(PruneModel(model_, groups, result.mask).ok());
    model_.eval();
    folder_ = ::testing::TempDir() + "/" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(folder_);
    std::filesystem::create_directories(folder_);
    path_ = folder_ + "/model.pt";
    ASSERT_TRUE(ExportTorchScript(model_, path_).ok());
  }

  int BatchNormLayers() const {
    int count = 0;
    for (int i = 0; i < model_.network().size(); ++i)
      count += model_.network().layer(i).kind == LayerKind::kBatchNorm;
    return count;
  }

  // Loads `path` in Python, runs `check` (statements on the module `m`), and expects it to compute
  // what the live model computes on a deterministic input both sides can build.
  void ExpectPythonComputesTheModel(const std::string& path, const std::string& check,
                                    double tolerance) {
    const at::Tensor x = at::arange(2 * 28 * 28, at::kFloat).mul(0.001).view({2, 1, 28, 28});
    const at::Tensor expected = model_.forward(x).flatten();
    const std::string script = absl::StrCat(
        "import torch\n"
        "m = torch.jit.load('",
        path, "')\nm.eval()\n", check,
        "x = torch.arange(2 * 28 * 28, dtype=torch.float32).mul(0.001).view(2, 1, 28, 28)\n"
        "print(' '.join('%.9g' % v for v in m(x).flatten().tolist()))\n");
    const CommandResult run = RunCommand({Python(), "-c", script});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    std::istringstream values(run.out);
    for (int64_t i = 0; i < expected.numel(); ++i) {
      double value = 0;
      ASSERT_TRUE(values >> value) << run.out;
      EXPECT_NEAR(value, expected[i].item<double>(), tolerance) << i;
    }
  }

  const Network network_ = *BuildModel("resnet20", 10, {1, 28, 28});
  NetworkModel model_{network_, 3};
  std::string folder_, path_;
};

TEST_F(ExportedModelTest, TorchJitLoadRunsThePrunedModel) {
  ExpectPythonComputesTheModel(path_, "", 1e-5);
}

TEST_F(ExportedModelTest, FrozenCopyHasNoBatchNormAndComputesTheSame) {
  const CommandResult frozen =
      RunCommand({OCS_WORKER_BIN, "model", "freeze", path_, "--input", "1,28,28", "--json"});
  ASSERT_EQ(frozen.exit_code, 0) << frozen.err;
  const auto report = nlohmann::json::parse(frozen.out);
  EXPECT_EQ(report["frozen"], folder_ + "/model.frozen.pt");
  EXPECT_EQ(report["batchNormsBefore"], BatchNormLayers());
  EXPECT_EQ(report["batchNormsAfter"], 0);
  EXPECT_LT(report["maxAbsDifference"].get<double>(), 1e-4);
  // Python finds no BatchNorm in what was written, and the outputs of the model it was taken from.
  ExpectPythonComputesTheModel(folder_ + "/model.frozen.pt",
                               "assert 'batch_norm' not in str(m.inlined_graph), 'batch_norm'\n",
                               1e-4);

  // -o into folders that do not exist yet; the text output names what was done.
  const std::string nested = folder_ + "/serving/v1/model.pt";
  const CommandResult text =
      RunCommand({OCS_WORKER_BIN, "model", "freeze", path_, "--input", "1,28,28", "-o", nested});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(absl::StrCat("BatchNorm folded into convolutions: ",
                                               BatchNormLayers(), " of ", BatchNormLayers())));
  EXPECT_TRUE(std::filesystem::is_regular_file(nested));
  EXPECT_FALSE(std::filesystem::exists(nested + ".tmp"));
  // -o naming a folder: the frozen model is written into it under its default name.
  const CommandResult into_folder = RunCommand(
      {OCS_WORKER_BIN, "model", "freeze", path_, "--input", "1,28,28", "-o", folder_ + "/serving"});
  ASSERT_EQ(into_folder.exit_code, 0) << into_folder.err;
  EXPECT_TRUE(std::filesystem::is_regular_file(folder_ + "/serving/model.frozen.pt"));
}

TEST_F(ExportedModelTest, FreezeRefusesBadInputByName) {
  auto freeze = [](std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), {OCS_WORKER_BIN, "model", "freeze"});
    return RunCommand(arguments);
  };
  const CommandResult missing = freeze({folder_ + "/nope.pt", "--input", "1,28,28"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope.pt\": no such file"));

  const std::string text_file = folder_ + "/notes.pt";
  std::ofstream(text_file) << "not a model\n";
  const CommandResult not_torchscript = freeze({text_file, "--input", "1,28,28"});
  EXPECT_EQ(not_torchscript.exit_code, 2);
  EXPECT_THAT(not_torchscript.err, HasSubstr("notes.pt\" is not a TorchScript file"));

  const CommandResult wrong_shape = freeze({path_, "--input", "3,32,32"});
  EXPECT_EQ(wrong_shape.exit_code, 2);
  EXPECT_THAT(wrong_shape.err, HasSubstr("refused a batch of shape [2, 3, 32, 32]"));
  EXPECT_FALSE(std::filesystem::exists(folder_ + "/model.frozen.pt"));

  const std::string original = ReadFile(path_);
  const CommandResult over_itself = freeze({path_, "--input", "1,28,28", "-o", path_});
  EXPECT_EQ(over_itself.exit_code, 2);
  EXPECT_THAT(over_itself.err, HasSubstr("is the model being frozen"));
  EXPECT_EQ(ReadFile(path_), original);

  EXPECT_EQ(freeze({path_}).exit_code, 2);  // --input is required
  // Shapes outside a job spec's inputShape ranges: a usage error (a negative size used to abort).
  for (const char* shape : {"--input=-1,8,8", "--input=1,0,28", "--input=1,28,100000"}) {
    const CommandResult bad_shape = freeze({path_, shape});
    EXPECT_EQ(bad_shape.exit_code, 2) << shape << "\n" << bad_shape.err;
    EXPECT_THAT(bad_shape.err, HasSubstr("--input must be C,H,W with C in [1, 1024]"));
  }
  if (!torch::cuda::is_available()) {
    const CommandResult no_gpu = freeze({path_, "--input", "1,28,28", "--device", "cuda"});
    EXPECT_EQ(no_gpu.exit_code, 1);
    EXPECT_THAT(no_gpu.err, HasSubstr("no CUDA device is visible"));
  }
}

}  // namespace
}  // namespace ocs::testing
