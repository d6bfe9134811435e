// The private state of one rank's Trainer, shared by trainer.cc (the loop) and
// trainer_checkpoint.cc (saving, resuming, the final report). Not for use outside worker/train.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/optim/sgd.h>

#include "common/mask.h"
#include "common/prune_decider.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/network.h"
#include "worker/engine/network_model.h"
#include "worker/engine/regularization.h"
#include "worker/train/batches.h"
#include "worker/train/captured_step.h"
#include "worker/train/collectives.h"
#include "worker/train/dataset.h"
#include "worker/train/decision_source.h"
#include "worker/train/trainer.h"

namespace ocs::worker::train {

struct Totals {
  double loss = 0, correct = 0, count = 0;
};

// The loss and correct-prediction sums of an epoch, kept on the training device and read once at
// its end: reading them per step would make the host wait for the GPU every step.
class DeviceTotals {
 public:
  explicit DeviceTotals(c10::Device device);
  void Zero();
  void Add(const at::Tensor& loss_sum, const at::Tensor& correct);
  Totals Read(double count) const;

 private:
  at::Tensor loss_, correct_;  // float64 scalars
};

struct Trainer::State {
  State(TrainerOptions options, Collectives& collectives);
  ~State();

  absl::Status Initialize(DecisionSource* external_decisions);
  absl::StatusOr<RunSummary> Run();

  // trainer.cc
  void MakeOptimizer();
  std::vector<at::Tensor> ModelTensors() const;
  void BroadcastModel();
  void AverageBatchNormStatistics();
  Totals AllRanks(Totals totals);
  void Report(const EpochRecord& record, double elapsed);
  absl::Status Boundary(int epoch, EpochRecord* record);
  absl::StatusOr<common::Mask> ComputeMask();
  absl::Status TrainEpoch(int epoch, EpochRecord* record);
  bool StopAgreed();
  bool GroupLasso() const;
  void ForwardBackward(const at::Tensor& x, const at::Tensor& y);
  void StepBody(const at::Tensor& x, const at::Tensor& y, bool capturing);
  void CaptureStep(const at::Tensor& x, const at::Tensor& y);
  void DropCapturedStep();
  Totals Evaluate();
  absl::Status Prune(int epoch, const common::Mask& mask);
  absl::Status Export();

  // trainer_checkpoint.cc
  absl::Status SaveCheckpoint();
  absl::Status StartFresh();  // a run from epoch 0: an earlier run's checkpoints are set aside
  absl::Status Resume();
  void RestoreMomentum();
  std::string ReportJson(const std::string& prune_report) const;

  TrainerOptions options;
  Collectives& collectives;
  GradientAverager averager;
  c10::Device device = c10::Device(c10::kCPU);

  Dataset data;  // on the training device
  Normalization normalization;
  std::unique_ptr<Preprocessor> preprocess;
  int64_t local_batch = 0;
  int64_t steps_per_epoch = 0;
  int64_t total_iterations = 0;

  engine::Network dense;
  std::unique_ptr<engine::ChannelGroups> groups;  // of the dense network
  std::shared_ptr<engine::NetworkModel> model;
  std::unique_ptr<torch::optim::SGD> optimizer;
  std::unique_ptr<engine::ChannelRegularizer> regularizer;  // while sparsity training runs
  double lambda = 0;
  std::unique_ptr<CapturedStep> captured;  // the CUDA graph of the step, while valid
  bool graphs_failed = false;              // a capture failed: eager steps from then on
  DeviceTotals train_sums{c10::Device(c10::kCPU)};

  std::unique_ptr<common::PruneDecider> decider;
  std::unique_ptr<DecisionSource> own_decisions;  // standalone or dense-only
  DecisionSource* decisions = nullptr;
  std::optional<common::Mask> prune_mask;
  bool warned_unreachable = false;

  int next_epoch = 0;
  int64_t iteration = 0;
  RunSummary summary;
  std::map<std::string, at::Tensor> resumed_momentum;  // applied once the optimizer exists
  std::function<void(const EpochRecord&)> on_epoch;
};

}  // namespace ocs::worker::train
