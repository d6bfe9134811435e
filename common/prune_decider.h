// The verdict at each epoch boundary of a one-cycle job — continue (regularizing the channels the
// current mask drops, with λ_t), prune now (with M_t), or fine-tune — from the masks alone. One
// implementation for both places a decision is made: the worker in standalone mode and the
// coordinator in service mode.
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/job_spec.h"
#include "common/mask.h"
#include "common/stability.h"

namespace ocs::common {

enum class Phase { kDense, kSparsity, kPruned };
const char* ToString(Phase phase);
// The inverse of ToString; nullopt for any other text.
std::optional<Phase> PhaseFromString(absl::string_view text);

struct Verdict {
  enum class Kind { kContinue, kPrune };
  Kind kind = Kind::kContinue;
  int epoch = 0;
  Phase phase = Phase::kDense;          // the phase epoch `epoch` trains in
  std::optional<StabilityPoint> point;  // J_t and J̄_t, when a mask was observed
  // kPrune: the mask to apply. kContinue with lambda > 0: the mask whose dropped channels to
  // regularize during the epoch.
  std::optional<Mask> mask;
  double lambda = 0;
};

class PruneDecider {
 public:
  PruneDecider(const StabilitySpec& stability, const RegularizationSpec& regularization);

  // Whether boundary `epoch` needs a mask M_t (monitoring has started and no prune happened).
  bool WantsMask(int epoch) const;
  // The verdict at the boundary before epoch `epoch`; `mask` must be given when WantsMask.
  absl::StatusOr<Verdict> Decide(int epoch, const std::optional<Mask>& mask);

  std::optional<int> sparsity_start() const { return sparsity_start_; }
  std::optional<int> prune_epoch() const { return prune_epoch_; }
  const StabilityTracker& tracker() const { return tracker_; }
  // Restores the decider from persisted state (a checkpoint or the coordinator's store).
  void Restore(std::vector<StabilityPoint> series, std::deque<Mask> recent_masks,
               std::optional<int> sparsity_start, std::optional<int> prune_epoch);

 private:
  StabilitySpec stability_;
  RegularizationSpec regularization_;
  StabilityTracker tracker_;
  std::optional<int> sparsity_start_;
  std::optional<int> prune_epoch_;
};

}  // namespace ocs::common
