#include "common/prune_decider.h"

#include "absl/strings/str_cat.h"

namespace ocs::common {

const char* ToString(Phase phase) {
  switch (phase) {
    case Phase::kDense:
      return "dense";
    case Phase::kSparsity:
      return "sparsity";
    case Phase::kPruned:
      return "pruned";
  }
  return "unknown";
}

std::optional<Phase> PhaseFromString(absl::string_view text) {
  for (Phase phase : {Phase::kDense, Phase::kSparsity, Phase::kPruned}) {
    if (text == ToString(phase)) return phase;
  }
  return std::nullopt;
}

PruneDecider::PruneDecider(const StabilitySpec& stability, const RegularizationSpec& regularization)
    : stability_(stability),
      regularization_(regularization),
      tracker_(stability),
      sparsity_start_(stability.sparsity_start_epoch) {}

bool PruneDecider::WantsMask(int epoch) const {
  return !prune_epoch_ && epoch >= stability_.monitor_start_epoch;
}

absl::StatusOr<Verdict> PruneDecider::Decide(int epoch, const std::optional<Mask>& mask) {
  Verdict verdict;
  verdict.epoch = epoch;
  if (prune_epoch_) {
    verdict.phase = Phase::kPruned;
    return verdict;
  }
  if (!WantsMask(epoch)) return verdict;  // dense training before monitoring starts
  if (!mask) {
    return absl::InvalidArgumentError(absl::StrCat("epoch ", epoch, ": a mask is required"));
  }
  auto point = tracker_.Observe(epoch, *mask);
  if (!point.ok()) return point.status();
  verdict.point = *point;
  if (!stability_.sparsity_start_epoch && !sparsity_start_) {
    sparsity_start_ = AutoSparsityStart(stability_, tracker_.series());
  }
  if (ShouldPrune(stability_, epoch, point->j_bar)) {
    prune_epoch_ = epoch;
    verdict.kind = Verdict::Kind::kPrune;
    verdict.phase = Phase::kPruned;
    verdict.mask = *mask;
    return verdict;
  }
  if (sparsity_start_ && epoch >= *sparsity_start_) {
    verdict.phase = Phase::kSparsity;
    verdict.lambda = RegularizationLambda(regularization_, *sparsity_start_, epoch);
    if (verdict.lambda > 0) verdict.mask = *mask;
  }
  return verdict;
}

void PruneDecider::Restore(std::vector<StabilityPoint> series, std::deque<Mask> recent_masks,
                           std::optional<int> sparsity_start, std::optional<int> prune_epoch) {
  tracker_.Restore(std::move(series), std::move(recent_masks));
  sparsity_start_ = sparsity_start;
  prune_epoch_ = prune_epoch;
}

}  // namespace ocs::common
