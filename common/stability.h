// The stability indicator of OCSPruner, computed where the decision is made (the coordinator, or
// the worker in standalone mode) from the masks alone. Pure functions and a small tracker.
//
//   J_t  = mean over groups g of |K_g^t ∩ K_g^(t-h+1)| / |K_g^t ∪ K_g^(t-h+1)|
//          (h = history = 3: the newest of the last h masks against the oldest; 0 until h exist)
//   J̄_t  = mean of the last `window` J values (fewer at the start)
//   t*   = the first epoch with J̄_t >= threshold, or sparsityEndEpoch at the latest.
#pragma once

#include <deque>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/mask.h"

namespace ocs::common {

// |a ∩ b| / |a ∪ b| of two kept-index sets (1 when both are empty).
double GroupJaccard(const GroupMask& a, const GroupMask& b);
// Mean GroupJaccard over groups; InvalidArgument when the masks' group structure differs.
absl::StatusOr<double> MaskSimilarity(const Mask& a, const Mask& b);

struct StabilityPoint {
  int epoch = 0;
  double j = 0;      // J_t
  double j_bar = 0;  // J̄_t
  bool operator==(const StabilityPoint&) const = default;
};

// Collects one mask per epoch (from monitorStartEpoch on) and yields J_t and J̄_t. Holds only what
// the rule needs: the last `history` masks and the series of points.
class StabilityTracker {
 public:
  explicit StabilityTracker(const StabilitySpec& spec) : spec_(spec) {}

  // Records M_t for `epoch`, which must follow the last recorded epoch; returns J_t and J̄_t.
  absl::StatusOr<StabilityPoint> Observe(int epoch, const Mask& mask);

  const std::vector<StabilityPoint>& series() const { return series_; }
  const std::deque<Mask>& recent_masks() const { return masks_; }
  // Restores a tracker from its persisted state (checkpoint or coordinator store).
  void Restore(std::vector<StabilityPoint> series, std::deque<Mask> recent_masks);

 private:
  StabilitySpec spec_;
  std::deque<Mask> masks_;
  std::vector<StabilityPoint> series_;
};

// Whether to prune at the boundary of `epoch` given its J̄: J̄ >= threshold, or the deadline
// sparsityEndEpoch reached.
bool ShouldPrune(const StabilitySpec& spec, int epoch, double j_bar);

// The first epoch whose J̄ can reach the threshold, were the masks never to change from
// monitorStartEpoch on: J needs `history` masks, and J̄ averages in the zeros before them. A
// sparsityEndEpoch at or before it leaves the indicator nothing to decide.
int EarliestStableEpoch(const StabilitySpec& spec);

// The automatic sparsity start: the first epoch t > 3 of `series` where J̄_t − J̄_(t−2) <= 1e-4,
// once J_t is defined (history masks exist). nullopt while no epoch qualifies.
std::optional<int> AutoSparsityStart(const StabilitySpec& spec,
                                     const std::vector<StabilityPoint>& series);

// λ for `epoch`, 0 before regularization starts. As in the official code, epochs
// t > sparsity_start + 1 are regularized and each adds `lambdaDelta` at its start every
// `interval` epochs: λ_t = lambda + lambdaDelta · (floor((t − s − 2) / interval) + 1).
double RegularizationLambda(const RegularizationSpec& spec, int sparsity_start, int epoch);

}  // namespace ocs::common
