// The trainer end to end on synthetic data: data parallelism over Gloo, checkpoint and resume
// across the prune (also under a coordinator's verdicts, and into a folder of an earlier run), a
// short one-cycle run that prunes and exports, and verdicts that must be refused.
#include "worker/train/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <ATen/ATen.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
#include "common/prune_decider.h"
#include "tests/support/files.h"
#include "tests/support/gloo.h"
#include "tests/support/subprocess.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/flops_target_search.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/network_model.h"
#include "worker/train/collectives.h"
#include "worker/train/decision_source.h"

namespace ocs::worker::train {
namespace {

namespace fs = std::filesystem;

common::JobSpec SyntheticJob(int workers) {
  auto spec = common::ParseJobSpec(absl::StrCat(R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: synthetic-test}
spec:
  model: {arch: resnet20, numClasses: 4, inputShape: [3, 12, 12]}
  data: {dataset: synthetic, trainLimit: 256, testLimit: 64}
  training: {epochs: 6, batchSize: 32, optimizer: {lr: 0.05}}
  stability: {monitorStartEpoch: 1, sparsityStartEpoch: 1, sparsityEndEpoch: 4}
  resources: {workers: )",
                                                workers, R"(, device: cpu}
  checkpoint: {everyEpochs: 1}
)"),
                                   "test");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

std::string FreshFolder(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  return dir;
}

TrainerOptions Options(const common::JobSpec& spec, const std::string& output) {
  TrainerOptions options;
  options.spec = spec;
  options.output_dir = output;
  options.quiet = true;
  return options;
}

std::vector<at::Tensor> Weights(const Trainer& trainer) {
  std::vector<at::Tensor> weights;
  for (const at::Tensor& t : trainer.model().parameters()) weights.push_back(t.detach().clone());
  for (const at::Tensor& t : trainer.model().buffers()) weights.push_back(t.detach().clone());
  return weights;
}

void ExpectIdentical(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].sizes(), b[i].sizes()) << i;
    EXPECT_TRUE(at::equal(a[i], b[i])) << "tensor " << i;
  }
}

int FreePort() { return ocs::testing::PickFreePort(); }

TEST(GradientAveragerTest, TwoRanksEqualOneRankOnTheGlobalBatch) {
  OCS_SKIP_WITHOUT_GLOO();
  const auto network = *engine::BuildModel("resnet20", 4, {3, 8, 8});
  const at::Tensor x = at::randn({8, 3, 8, 8}, at::detail::createCPUGenerator(1));
  const at::Tensor y = at::tensor({0, 1, 2, 3, 3, 2, 1, 0}, at::kLong);
  auto gradients = [&](engine::NetworkModel& model, const at::Tensor& xs, const at::Tensor& ys) {
    model.eval();  // batch statistics would differ between 4 and 8 examples
    model.zero_grad();
    at::cross_entropy_loss(model.forward(xs), ys).backward();
  };
  engine::NetworkModel single(network, 5);
  gradients(single, x, y);

  const std::string master = absl::StrCat("127.0.0.1:", FreePort());
  std::vector<std::vector<at::Tensor>> grads(2);
  auto rank = [&](int r) {
    auto collectives = JoinProcessGroup({master, r, 2, common::Device::kCpu});
    ASSERT_TRUE(collectives.ok()) << collectives.status();
    engine::NetworkModel model(network, 5);
    gradients(model, x.narrow(0, 4 * r, 4), y.narrow(0, 4 * r, 4));
    GradientAverager averager(**collectives, /*bucket_bytes=*/64 << 10);  // several buckets
    averager.Average(model.parameters());
    for (const at::Tensor& p : model.parameters()) grads[r].push_back(p.grad().clone());
  };
  std::thread r0(rank, 0), r1(rank, 1);
  r0.join(), r1.join();
  const auto parameters = single.parameters();
  ASSERT_EQ(grads[0].size(), parameters.size());
  for (size_t i = 0; i < parameters.size(); ++i) {
    EXPECT_TRUE(at::equal(grads[0][i], grads[1][i])) << i;  // identical on every rank
    EXPECT_TRUE(at::allclose(grads[0][i], parameters[i].grad(), 1e-4, 1e-6)) << i;
  }
}

TEST(TrainerTest, ShortRunPrunesAndExports) {
  const std::string output = FreshFolder("trainer-run");
  const common::JobSpec spec = SyntheticJob(1);
  auto collectives = SingleProcess();
  auto trainer = Trainer::Create(Options(spec, output), *collectives);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto summary = (*trainer)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->finished);
  // Synthetic data never settles the mask to J̄ >= 0.999 this fast: the deadline prunes.
  EXPECT_EQ(summary->prune_epoch, 4);
  EXPECT_NEAR(1.0 - double(summary->final_flops) / summary->dense_flops, 0.5, 5e-4);
  EXPECT_EQ(summary->epochs.size(), 6u);
  EXPECT_EQ(summary->epochs.back().phase, common::Phase::kPruned);
  EXPECT_EQ(summary->epochs[2].lambda, 0.0);  // λ starts at epochs > sparsityStart + 1
  EXPECT_DOUBLE_EQ(summary->epochs[3].lambda, 2e-4);
  EXPECT_EQ(summary->epochs[3].phase, common::Phase::kSparsity);
  EXPECT_EQ(summary->epochs[0].phase, common::Phase::kDense);
  EXPECT_TRUE(summary->epochs[2].j_bar.has_value());
  EXPECT_FALSE(summary->epochs[0].j_bar.has_value());

  const auto report = nlohmann::json::parse(ocs::testing::ReadFile(output + "/report.json"));
  EXPECT_EQ(report["pruneEpoch"], *summary->prune_epoch);
  EXPECT_EQ(report["after"]["flops"], summary->final_flops);
  EXPECT_EQ(report["epochs"].size(), 6u);
  torch::jit::Module loaded = torch::jit::load(output + "/model.pt");
  const at::Tensor out = loaded.forward({at::zeros({2, 3, 12, 12})}).toTensor();
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{2, 4}));
}

TEST(TrainerTest, ResumedRunMatchesAnUninterruptedOneAcrossThePrune) {
  const common::JobSpec spec = SyntheticJob(1);
  auto collectives = SingleProcess();
  const std::string straight = FreshFolder("trainer-straight");
  auto uninterrupted = *Trainer::Create(Options(spec, straight), *collectives);
  const auto expected = *uninterrupted->Run();
  ASSERT_TRUE(expected.prune_epoch.has_value());

  // Interrupt once before the prune and once after it; resume each time from the checkpoint.
  const std::string resumed_dir = FreshFolder("trainer-resumed");
  for (int stop : {1, *expected.prune_epoch + 1}) {
    TrainerOptions options = Options(spec, resumed_dir);
    options.resume = true;
    options.stop_after_epoch = stop;
    auto part = *Trainer::Create(options, *collectives);
    ASSERT_FALSE(part->Run()->finished);
  }
  TrainerOptions options = Options(spec, resumed_dir);
  options.resume = true;
  auto rest = *Trainer::Create(options, *collectives);
  const auto resumed = *rest->Run();
  EXPECT_TRUE(resumed.finished);
  EXPECT_EQ(resumed.prune_epoch, expected.prune_epoch);
  EXPECT_EQ(resumed.final_accuracy, expected.final_accuracy);
  EXPECT_EQ(resumed.accuracy_after_prune, expected.accuracy_after_prune);
  ExpectIdentical(Weights(*rest), Weights(*uninterrupted));
}

TEST(TrainerTest, TwoRanksHoldBitIdenticalWeightsAndMasks) {
  OCS_SKIP_WITHOUT_GLOO();
  const common::JobSpec spec = SyntheticJob(2);
  const std::string master = absl::StrCat("127.0.0.1:", FreePort());
  std::vector<std::vector<at::Tensor>> weights(2);
  std::vector<common::Mask> masks(2);
  std::vector<RunSummary> summaries(2);
  auto rank = [&](int r) {
    auto collectives = JoinProcessGroup({master, r, 2, common::Device::kCpu});
    ASSERT_TRUE(collectives.ok()) << collectives.status();
    TrainerOptions options = Options(spec, FreshFolder(absl::StrCat("trainer-rank", r)));
    options.stop_after_epoch = 2;  // still dense: masks computed by each rank on its own
    auto trainer = Trainer::Create(options, **collectives);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    summaries[r] = *(*trainer)->Run();
    weights[r] = Weights(**trainer);
    const engine::NetworkModel& model = (*trainer)->model();
    const auto groups = *engine::ChannelGroups::Derive(model.network(), {});
    masks[r] = engine::SearchSubnetwork(model.network(), groups,
                                        engine::GroupSaliency(model, groups, true), {0.5})
                   ->mask;
  };
  std::thread r0(rank, 0), r1(rank, 1);
  r0.join(), r1.join();
  ExpectIdentical(weights[0], weights[1]);
  EXPECT_EQ(masks[0], masks[1]);
  EXPECT_EQ(summaries[0].epochs.back().test_accuracy, summaries[1].epochs.back().test_accuracy);
}

// The verdicts a scripted coordinator sends: `decide` answers every boundary, no masks asked.
class ScriptedDecisions final : public DecisionSource {
 public:
  explicit ScriptedDecisions(std::function<common::Verdict(int epoch)> decide)
      : decide_(std::move(decide)) {}
  bool WantsMask(int) const override { return false; }
  absl::StatusOr<common::Verdict> Decide(const BoundaryReport& report) override {
    return decide_(report.epoch);
  }

 private:
  std::function<common::Verdict(int)> decide_;
};

// Decides as the coordinator does, with a decider of its own that outlives the ranks' restarts:
// the trainer's own decider is never consulted.
class CoordinatorLikeDecisions final : public DecisionSource {
 public:
  explicit CoordinatorLikeDecisions(const common::JobSpec& spec)
      : decider_(spec.stability, spec.regularization) {}
  bool WantsMask(int epoch) const override { return decider_.WantsMask(epoch); }
  absl::StatusOr<common::Verdict> Decide(const BoundaryReport& report) override {
    return decider_.Decide(report.epoch, report.mask);
  }

 private:
  common::PruneDecider decider_;
};

// A fresh run into the folder of a finished one: the earlier run is set aside whole, the new
// run's checkpoints are kept (they used to be rotated away at once in favour of the earlier run's
// later epochs), and a resume continues the new run, not the earlier one.
TEST(TrainerTest, AFreshRunSetsAnEarlierRunAsideAndResumesItsOwnCheckpoints) {
  const common::JobSpec spec = SyntheticJob(1);
  auto collectives = SingleProcess();
  const std::string dir = FreshFolder("trainer-rerun");
  auto earlier = *Trainer::Create(Options(spec, dir), *collectives);
  ASSERT_TRUE(earlier->Run()->finished);

  TrainerOptions options = Options(spec, dir);
  options.stop_after_epoch = 1;
  auto first_part = Trainer::Create(options, *collectives);
  ASSERT_TRUE(first_part.ok()) << first_part.status();
  ASSERT_TRUE((*first_part)->Run().ok());
  const std::vector<std::string> names = ocs::testing::SortedFileNames(dir);
  ASSERT_EQ(names.size(), 3u) << ::testing::PrintToString(names);
  EXPECT_EQ(names[0], "checkpoint-epoch-00001.pt");
  EXPECT_EQ(names[1], "checkpoint-epoch-00002.pt");
  EXPECT_THAT(names[2], ::testing::StartsWith("earlier-run-"));
  EXPECT_THAT(ocs::testing::SortedFileNames(dir + "/" + names[2]),
              ::testing::ElementsAre("checkpoint-epoch-00005.pt", "checkpoint-epoch-00006.pt",
                                     "model.pt", "report.json"));

  options = Options(spec, dir);
  options.resume = true;
  auto rest = *Trainer::Create(options, *collectives);
  std::vector<int> trained;
  rest->OnEpoch([&](const EpochRecord& record) { trained.push_back(record.epoch); });
  ASSERT_TRUE(rest->Run()->finished);
  EXPECT_EQ(trained, (std::vector<int>{2, 3, 4, 5}));
  ExpectIdentical(Weights(*rest), Weights(*earlier));  // same job, same seed
}

// Every checkpoint unreadable: an error naming them, not a silent start from epoch 0.
TEST(TrainerTest, ResumeRefusesAFolderOfUnreadableCheckpoints) {
  const std::string dir = FreshFolder("trainer-corrupt");
  fs::create_directories(dir);
  std::ofstream(dir + "/checkpoint-epoch-00002.pt") << "truncated";
  std::ofstream(dir + "/checkpoint-epoch-00004.pt") << "";
  TrainerOptions options = Options(SyntheticJob(1), dir);
  options.resume = true;
  auto collectives = SingleProcess();
  auto trainer = Trainer::Create(options, *collectives);
  EXPECT_EQ(trainer.status().code(), absl::StatusCode::kDataLoss) << trainer.status();
  EXPECT_THAT(std::string(trainer.status().message()),
              ::testing::AllOf(::testing::HasSubstr("checkpoint-epoch-00002.pt"),
                               ::testing::HasSubstr("checkpoint-epoch-00004.pt")));
}

// In service mode the trainer's own decider is never consulted; a resumed run still reports the
// epoch it was pruned at.
TEST(TrainerTest, ResumeUnderTheCoordinatorKeepsThePruneEpoch) {
  const common::JobSpec spec = SyntheticJob(1);
  auto collectives = SingleProcess();
  const std::string dir = FreshFolder("trainer-service-resume");
  CoordinatorLikeDecisions coordinator(spec);
  TrainerOptions options = Options(spec, dir);
  options.stop_after_epoch = 4;  // the first epoch after the prune
  auto first_part = *Trainer::Create(options, *collectives, &coordinator);
  ASSERT_EQ(first_part->Run()->prune_epoch, 4);

  options = Options(spec, dir);
  options.resume = true;
  auto rest = *Trainer::Create(options, *collectives, &coordinator);
  const auto summary = rest->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->finished);
  EXPECT_EQ(summary->prune_epoch, 4);
  const auto report = nlohmann::json::parse(ocs::testing::ReadFile(dir + "/report.json"));
  EXPECT_EQ(report["pruneEpoch"], 4);
}

common::Verdict Continue(int epoch, common::Mask mask) {
  common::Verdict verdict;
  verdict.epoch = epoch;
  verdict.phase = common::Phase::kSparsity;
  verdict.mask = std::move(mask);
  verdict.lambda = 1e-4;
  return verdict;
}

// The model's groups, all channels kept: a mask that fits.
common::Mask DenseMaskOf(const common::JobSpec& spec) {
  const auto& s = spec.model.input_shape;
  const auto network =
      *engine::BuildModel(spec.model.arch, spec.model.num_classes, {s[0], s[1], s[2]});
  return common::DenseMask(engine::ChannelGroups::Derive(network, {})->sizes());
}

// A verdict is checked before its mask is used: a mask of another model is an error naming the
// mismatch, not an out-of-bounds read in the regularizer, the compensation or the surgery.
TEST(TrainerTest, AVerdictWhoseMaskDoesNotFitTheModelIsAnError) {
  const common::JobSpec spec = SyntheticJob(1);
  auto collectives = SingleProcess();
  const common::Mask fits = DenseMaskOf(spec);
  auto run = [&](common::Verdict verdict) {
    ScriptedDecisions decisions([&](int) { return verdict; });
    auto trainer =
        Trainer::Create(Options(spec, FreshFolder("trainer-bad-mask")), *collectives, &decisions);
    return trainer.ok() ? (*trainer)->Run().status() : trainer.status();
  };

  common::Mask few_groups = fits;
  few_groups.groups.resize(3);
  absl::Status status = run(Continue(0, few_groups));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("continue verdict for epoch 0: its mask does not fit the model "
                                   "(mask has 3 groups, the model has"));

  common::Mask wider = fits;
  wider.groups[1].size += 1;
  common::Verdict prune = Continue(0, wider);
  prune.kind = common::Verdict::Kind::kPrune;
  status = run(prune);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("prune verdict for epoch 0: its mask does not fit the model "
                                   "(mask group 1 has"));

  common::Mask out_of_range = fits;
  out_of_range.groups[1].kept.back() = out_of_range.groups[1].size + 5;
  status = run(Continue(0, out_of_range));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("out of range"));
}

TEST(TrainerTest, APruneVerdictWithoutAMaskIsAnError) {
  const common::JobSpec spec = SyntheticJob(1);
  auto collectives = SingleProcess();
  ScriptedDecisions decisions([](int epoch) {
    common::Verdict verdict;
    verdict.epoch = epoch;
    verdict.kind = common::Verdict::Kind::kPrune;
    verdict.phase = common::Phase::kPruned;
    return verdict;
  });
  auto trainer =
      Trainer::Create(Options(spec, FreshFolder("trainer-no-mask")), *collectives, &decisions);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const absl::Status status = (*trainer)->Run().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), "prune verdict for epoch 0 carries no mask");
}

// model.pt and report.json replace what was there by rename, never by writing into it: here the
// old entries are links to /dev/full, where any write in place fails (or, for report.json, used to
// fail unnoticed).
TEST(TrainerTest, TheModelAndTheReportReplaceTheOldFilesWhole) {
  const std::string dir = FreshFolder("trainer-replace");
  fs::create_directories(dir);
  fs::create_symlink("/dev/full", dir + "/model.pt");
  fs::create_symlink("/dev/full", dir + "/report.json");
  auto collectives = SingleProcess();
  auto trainer = *Trainer::Create(Options(SyntheticJob(1), dir), *collectives);
  const auto summary = trainer->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_FALSE(fs::is_symlink(dir + "/report.json"));
  const auto report = nlohmann::json::parse(ocs::testing::ReadFile(dir + "/report.json"));
  EXPECT_EQ(report["pruneEpoch"], 4);
  EXPECT_FALSE(fs::is_symlink(dir + "/model.pt"));
  torch::jit::Module loaded = torch::jit::load(dir + "/model.pt");
  EXPECT_EQ(loaded.forward({at::zeros({1, 3, 12, 12})}).toTensor().sizes(),
            (at::IntArrayRef{1, 4}));
  EXPECT_FALSE(fs::exists(dir + "/report.json.tmp"));
  EXPECT_FALSE(fs::exists(dir + "/model.pt.tmp"));
}

TEST(TrainerTest, RejectsWhatTheJobGetsWrong) {
  common::JobSpec spec = SyntheticJob(1);
  auto collectives = SingleProcess();
  spec.training.batch_size = 100000;
  EXPECT_EQ(Trainer::Create(Options(spec, FreshFolder("bad")), *collectives).status().code(),
            absl::StatusCode::kInvalidArgument);
  spec = SyntheticJob(1);
  spec.resources.device = common::Device::kCuda;
  if (!at::hasCUDA()) {
    EXPECT_EQ(Trainer::Create(Options(spec, FreshFolder("bad")), *collectives).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace ocs::worker::train
