// Where the prune verdict for an epoch boundary comes from. Standalone: the worker applies the
// stability rule itself (common::PruneDecider). Service mode: the coordinator sends it (the
// worker agent implements this interface). Every rank asks at the same boundary with the same
// mask (rank 0's, broadcast), so every rank gets the same verdict.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "common/mask.h"
#include "common/prune_decider.h"

namespace ocs::worker::train {

// What a rank knows at a boundary, for the decision and for reporting.
struct BoundaryReport {
  int epoch = 0;  // the epoch about to start
  std::optional<common::Mask> mask;
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
  int64_t flops = 0, params = 0;  // of the network as it is now
  double learning_rate = 0;       // at the last step of the epoch that ended
  // CRC-32 of every weight and BatchNorm statistic (several ranks only): ranks of one job must
  // agree bit for bit, and the coordinator fails the job when they do not.
  uint32_t weights_digest = 0;
};

class DecisionSource {
 public:
  virtual ~DecisionSource() = default;
  // Whether the boundary before `epoch` needs a mask.
  virtual bool WantsMask(int epoch) const = 0;
  virtual absl::StatusOr<common::Verdict> Decide(const BoundaryReport& report) = 0;
  // The trainer resumed from a checkpoint: training continues at `next_epoch`, pruned or not.
  virtual void OnResume(int next_epoch, bool pruned) {}
};

class StandaloneDecisionSource final : public DecisionSource {
 public:
  explicit StandaloneDecisionSource(common::PruneDecider& decider) : decider_(decider) {}
  bool WantsMask(int epoch) const override { return decider_.WantsMask(epoch); }
  absl::StatusOr<common::Verdict> Decide(const BoundaryReport& report) override {
    return decider_.Decide(report.epoch, report.mask);
  }

 private:
  common::PruneDecider& decider_;
};

// The baseline run: the same training with no mask, no regularization and no prune.
class DenseOnlyDecisionSource final : public DecisionSource {
 public:
  bool WantsMask(int) const override { return false; }
  absl::StatusOr<common::Verdict> Decide(const BoundaryReport& report) override {
    common::Verdict verdict;
    verdict.epoch = report.epoch;
    return verdict;
  }
};

}  // namespace ocs::worker::train
