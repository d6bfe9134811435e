// The one-cycle training loop of one rank: dense training, from monitorStartEpoch a mask M_t at
// every epoch boundary, regularization of the channels it drops once sparsity training starts,
// the prune when the verdict says so (surgery, compensation, BatchNorm re-estimation), fine-tuning
// to the last epoch, then the export of the pruned model and its report.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/prune_decider.h"
#include "worker/train/collectives.h"
#include "worker/train/decision_source.h"

namespace ocs::worker::engine {
class NetworkModel;
}

namespace ocs::worker::train {

// One training step done: which, and the seconds its gradient all-reduce took (as the host sees
// it on a GPU).
struct StepDone {
  int epoch = 0;
  int64_t step = 0, steps = 0;  // steps done in the epoch, and the epoch's steps
  double allreduce_s = 0;
  int64_t images = 0;  // this rank's training images in the step
};

struct TrainerOptions {
  common::JobSpec spec;
  std::string output_dir;  // checkpoints, model.pt, report.json
  bool resume = false;
  int stop_after_epoch = -1;  // >= 0: return after that epoch (tests of interruption)
  bool progress_bar = false;  // redraw a bar within the epoch (a terminal is attached)
  bool quiet = false;         // no per-epoch lines
  bool dense_only = false;    // the unpruned baseline: same schedule, no masks, no prune
  bool cuda_graphs = true;    // on a GPU, replay the training step as a CUDA graph
  // Polled every step: true stops the run with Cancelled (the coordinator cancelled this rank).
  std::function<bool()> stop_requested;
  // Called after every training step.
  std::function<void(const StepDone&)> on_step;
};

struct EpochTimings {
  double data_s = 0, compute_s = 0, allreduce_s = 0, mask_s = 0, eval_s = 0;
};

struct EpochRecord {
  int epoch = 0;
  common::Phase phase = common::Phase::kDense;
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
  double lr = 0, lambda = 0;
  std::optional<double> j, j_bar;
  int64_t flops = 0, params = 0;
  double images_per_second = 0;
  EpochTimings timings;
};

struct RunSummary {
  int64_t dense_flops = 0, dense_params = 0, final_flops = 0, final_params = 0;
  std::optional<int> prune_epoch;
  std::optional<double> accuracy_before_prune, accuracy_after_prune;
  double final_accuracy = 0;
  double wall_seconds = 0;
  bool finished = false;        // false when stopped early by stop_after_epoch
  int cuda_graph_captures = 0;  // training-step graphs recorded (GPU only)
  std::vector<EpochRecord> epochs;
};

// Why a rank stopped on an exception from LibTorch, Gloo or c10d. ResourceExhausted when a tensor
// did not fit in the device's memory: the job as it is would stop there again. Aborted otherwise
// (a peer that died mid-collective): a restart from the checkpoint may get past it.
absl::Status TrainingStopped(const std::exception& e, const common::JobSpec& spec);
// Whether `status` is TrainingStopped's out of memory (other ResourceExhausted errors, a full
// disk, are not).
bool IsOutOfMemoryStop(const absl::Status& status);

class Trainer {
 public:
  // Loads the data and builds the model; InvalidArgument/NotFound for what the job gets wrong.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(TrainerOptions options,
                                                         Collectives& collectives,
                                                         DecisionSource* decisions = nullptr);
  ~Trainer();

  absl::StatusOr<RunSummary> Run();

  // Called at the end of every epoch (all ranks), e.g. for metrics.
  void OnEpoch(std::function<void(const EpochRecord&)> callback);

  // The live model (for tests and the worker agent's weight digests).
  const engine::NetworkModel& model() const;

  struct State;

 private:
  explicit Trainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ocs::worker::train
