// The worker on a GPU: the NCCL process group, the CUDA-graph training step against eager steps,
// a whole pruning run in bf16, the decoupled shrink's multi-tensor update on channels-last
// weights, and the device memory the worker reports. Skipped where no CUDA device is visible (CI);
// bench/gpu/run.sh runs them on a GPU host.
#include <gtest/gtest.h>

#include <filesystem>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
#include "tests/support/subprocess.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/flops_target_search.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/network_model.h"
#include "worker/engine/regularization.h"
#include "worker/train/collectives.h"
#include "worker/train/torch_runtime.h"
#include "worker/train/trainer.h"

namespace ocs::worker::train {
namespace {

namespace fs = std::filesystem;

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

common::JobSpec GpuJob(const std::string& precision, int epochs) {
  auto spec = common::ParseJobSpec(
      absl::StrCat(R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: gpu-test}
spec:
  model: {arch: resnet20, numClasses: 4, inputShape: [3, 16, 16]}
  data: {dataset: synthetic, trainLimit: 1024, testLimit: 256}
  training: {epochs: )",
                   epochs, R"(, batchSize: 64, precision: )", precision, R"(, optimizer: {lr: 0.05}}
  stability: {monitorStartEpoch: 1, sparsityStartEpoch: 1, sparsityEndEpoch: )",
                   epochs - 1, R"(}
  resources: {workers: 1, device: cuda}
  checkpoint: {everyEpochs: 0}
)"),
      "test");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

RunSummary Train(const common::JobSpec& spec, bool graphs, bool dense_only,
                 const std::string& name) {
  TrainerOptions options;
  options.spec = spec;
  options.output_dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(options.output_dir);
  options.quiet = true;
  options.cuda_graphs = graphs;
  options.dense_only = dense_only;
  auto collectives = SingleProcess();
  auto trainer = Trainer::Create(options, *collectives);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  auto summary = (*trainer)->Run();
  EXPECT_TRUE(summary.ok()) << summary.status();
  return *summary;
}

TEST_F(CudaTest, NcclProcessGroupOfOneReducesAndBroadcasts) {
  Rendezvous rendezvous{absl::StrCat("127.0.0.1:", ocs::testing::PickFreePort()), 0, 1,
                        common::Device::kCuda};
  rendezvous.form_group_alone = true;
  auto collectives = JoinProcessGroup(rendezvous);
  ASSERT_TRUE(collectives.ok()) << collectives.status();
  const auto on_gpu = at::TensorOptions().device(at::kCUDA);
  std::vector<at::Tensor> tensors = {at::arange(6, on_gpu.dtype(at::kFloat)).view({2, 3}),
                                     at::ones({4}, on_gpu.dtype(at::kFloat))};
  (*collectives)->AllReduceSum(tensors);
  EXPECT_TRUE(at::equal(tensors[0].cpu(), at::arange(6, at::kFloat).view({2, 3})));
  (*collectives)->Broadcast(tensors, 0);
  EXPECT_TRUE(at::equal(tensors[1].cpu(), at::ones({4})));
  (*collectives)->Barrier();
}

TEST_F(CudaTest, GraphReplayTrainsLikeEagerSteps) {
  const common::JobSpec spec = GpuJob("fp32", 3);
  const RunSummary eager = Train(spec, /*graphs=*/false, /*dense_only=*/true, "eager");
  const RunSummary graphed = Train(spec, /*graphs=*/true, /*dense_only=*/true, "graphed");
  EXPECT_EQ(eager.cuda_graph_captures, 0);
  EXPECT_EQ(graphed.cuda_graph_captures, 1);  // dense training: one graph for the whole run
  ASSERT_EQ(eager.epochs.size(), graphed.epochs.size());
  for (size_t e = 0; e < eager.epochs.size(); ++e) {
    // Same data, same arithmetic; only cuDNN's algorithm choices may differ slightly.
    EXPECT_NEAR(graphed.epochs[e].train_loss, eager.epochs[e].train_loss,
                0.02 * eager.epochs[e].train_loss)
        << "epoch " << e;
    EXPECT_NEAR(graphed.epochs[e].test_accuracy, eager.epochs[e].test_accuracy, 0.05)
        << "epoch " << e;
  }
  EXPECT_LT(graphed.epochs.back().train_loss, graphed.epochs.front().train_loss);
}

TEST_F(CudaTest, Bf16PruningRunRecapturesAfterThePruneAndExports) {
  const RunSummary summary = Train(GpuJob("bf16", 6), /*graphs=*/true, false, "bf16-prune");
  ASSERT_TRUE(summary.finished);
  ASSERT_TRUE(summary.prune_epoch.has_value());
  EXPECT_LT(summary.final_flops, summary.dense_flops);
  EXPECT_GE(summary.cuda_graph_captures, 2);  // before and after the prune
  EXPECT_GT(summary.final_accuracy, 0.5);     // four well-separated synthetic classes
  torch::jit::Module model = torch::jit::load(::testing::TempDir() + "/bf16-prune/model.pt");
  const at::Tensor logits = model.forward({at::randn({2, 3, 16, 16})}).toTensor();
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{2, 4}));
}

TEST_F(CudaTest, DecoupledShrinkOnChannelsLastGpuWeightsMatchesTheCpu) {
  using namespace engine;
  const Network network = *BuildModel("resnet20", 10, {3, 32, 32});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel cpu(network, /*seed=*/7), gpu(network, /*seed=*/7);
  gpu.to(at::kCUDA);
  gpu.UseChannelsLast();
  const common::Mask mask =
      SearchSubnetwork(network, groups, GroupSaliency(cpu, groups, true), {.target_reduction = 0.5})
          ->mask;
  ChannelRegularizer on_cpu(cpu, groups, mask), on_gpu(gpu, groups, mask);
  ASSERT_GT(on_gpu.selected_channels(), 0);
  for (int step = 0; step < 3; ++step) {
    on_cpu.ShrinkDecoupled(/*lambda=*/0.5, /*lr=*/0.1);
    on_gpu.ShrinkDecoupled(/*lambda=*/0.5, /*lr=*/0.1);
  }
  const auto cpu_parameters = cpu.named_parameters();
  for (const auto& p : gpu.named_parameters()) {
    EXPECT_TRUE(at::allclose(p.value().cpu(), cpu_parameters[p.key()], 1e-5, 1e-6)) << p.key();
    if (p.value().dim() == 4) {
      EXPECT_TRUE(p.value().is_contiguous(at::MemoryFormat::ChannelsLast)) << p.key();
    }
  }
}

TEST_F(CudaTest, CudaMemoryCountsWhatTheWorkerAllocates) {
  const auto before = CudaMemory();
  ASSERT_TRUE(before.has_value()) << "a CUDA build with a GPU reports its memory";
  EXPECT_GT(before->total_bytes, int64_t{1} << 30);
  EXPECT_LE(before->used_bytes, before->total_bytes);
  constexpr int64_t kBytes = int64_t{512} << 20;
  at::Tensor block = at::empty({kBytes}, at::TensorOptions().device(at::kCUDA).dtype(at::kByte));
  block.fill_(1);
  torch::cuda::synchronize();
  const auto after = CudaMemory();
  ASSERT_TRUE(after.has_value());
  // Other processes may allocate meanwhile, but ours is at least there.
  EXPECT_GE(after->used_bytes - before->used_bytes, kBytes);
}

}  // namespace
}  // namespace ocs::worker::train
