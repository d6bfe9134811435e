#include "common/stability.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace ocs::common {
namespace {

constexpr double kAutoStartTolerance = 1e-4;
constexpr int kAutoStartEarliestEpoch = 4;  // "the first epoch > 3"

}  // namespace

double GroupJaccard(const GroupMask& a, const GroupMask& b) {
  std::vector<int> common;
  std::set_intersection(a.kept.begin(), a.kept.end(), b.kept.begin(), b.kept.end(),
                        std::back_inserter(common));
  const size_t united = a.kept.size() + b.kept.size() - common.size();
  return united == 0 ? 1.0 : static_cast<double>(common.size()) / static_cast<double>(united);
}

absl::StatusOr<double> MaskSimilarity(const Mask& a, const Mask& b) {
  if (a.groups.size() != b.groups.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("masks have ", a.groups.size(), " and ", b.groups.size(), " groups"));
  }
  if (a.groups.empty()) return 1.0;
  double sum = 0;
  for (size_t g = 0; g < a.groups.size(); ++g) {
    if (a.groups[g].size != b.groups[g].size) {
      return absl::InvalidArgumentError(absl::StrCat("mask group ", g, " has ", a.groups[g].size,
                                                     " and ", b.groups[g].size, " channels"));
    }
    sum += GroupJaccard(a.groups[g], b.groups[g]);
  }
  return sum / static_cast<double>(a.groups.size());
}

absl::StatusOr<StabilityPoint> StabilityTracker::Observe(int epoch, const Mask& mask) {
  if (!series_.empty() && epoch != series_.back().epoch + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("stability: epoch ", epoch, " does not follow epoch ", series_.back().epoch));
  }
  if (!masks_.empty()) {
    if (auto same = MaskSimilarity(masks_.back(), mask); !same.ok()) return same.status();
  }
  masks_.push_back(mask);
  if (static_cast<int>(masks_.size()) > spec_.history) masks_.pop_front();

  StabilityPoint point{epoch, 0.0, 0.0};
  if (static_cast<int>(masks_.size()) == spec_.history) {
    point.j = *MaskSimilarity(masks_.front(), masks_.back());
  }
  const int count = std::min<int>(spec_.window, static_cast<int>(series_.size()) + 1);
  double sum = point.j;
  for (int i = 1; i < count; ++i) sum += series_[series_.size() - i].j;
  point.j_bar = sum / count;
  series_.push_back(point);
  return point;
}

void StabilityTracker::Restore(std::vector<StabilityPoint> series, std::deque<Mask> recent_masks) {
  series_ = std::move(series);
  masks_ = std::move(recent_masks);
}

bool ShouldPrune(const StabilitySpec& spec, int epoch, double j_bar) {
  return j_bar >= spec.threshold || epoch >= spec.sparsity_end_epoch;
}

int EarliestStableEpoch(const StabilitySpec& spec) {
  StabilityTracker tracker(spec);
  const Mask unchanging;  // no groups: every comparison is 1
  // J̄ reaches 1 once `window` defined J values fill it, so this ends within history + window.
  for (int epoch = spec.monitor_start_epoch;; ++epoch) {
    if (tracker.Observe(epoch, unchanging)->j_bar >= spec.threshold) return epoch;
  }
}

std::optional<int> AutoSparsityStart(const StabilitySpec& spec,
                                     const std::vector<StabilityPoint>& series) {
  // J_t is defined from the history-th mask on: series index history-1.
  for (size_t i = std::max<size_t>(2, spec.history - 1); i < series.size(); ++i) {
    if (series[i].epoch < kAutoStartEarliestEpoch) continue;
    if (series[i - 2].epoch != series[i].epoch - 2) continue;
    if (series[i].j_bar - series[i - 2].j_bar <= kAutoStartTolerance) return series[i].epoch;
  }
  return std::nullopt;
}

double RegularizationLambda(const RegularizationSpec& spec, int sparsity_start, int epoch) {
  if (epoch <= sparsity_start + 1) return 0.0;
  const int increments = (epoch - sparsity_start - 2) / spec.interval + 1;
  return spec.lambda + spec.lambda_delta * increments;
}

}  // namespace ocs::common
