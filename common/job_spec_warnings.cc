#include "common/job_spec_warnings.h"

#include "absl/strings/str_cat.h"
#include "common/stability.h"

namespace ocs::common {
namespace {

// A history and window too long for the sparsity phase: the prune is always the forced one at
// sparsityEndEpoch, whatever the masks do (benchmarks want that; a user rarely does).
std::optional<SpecError> StabilityCannotDecide(const StabilitySpec& s) {
  const int earliest = EarliestStableEpoch(s);
  if (earliest < s.sparsity_end_epoch) return std::nullopt;
  return SpecError{
      "spec.stability.window",
      absl::StrCat("with history ", s.history, " and window ", s.window, " from monitorStartEpoch ",
                   s.monitor_start_epoch, ", J̄ can reach the threshold ", s.threshold, " at epoch ",
                   earliest, " at the earliest, not before sparsityEndEpoch (",
                   s.sparsity_end_epoch, "): the prune is always forced at epoch ",
                   s.sparsity_end_epoch,
                   "; shorten the window or history, or raise "
                   "sparsityEndEpoch")};
}

}  // namespace

std::vector<SpecError> JobSpecWarnings(const JobSpec& spec) {
  std::vector<SpecError> warnings;
  if (auto warning = StabilityCannotDecide(spec.stability)) warnings.push_back(*warning);
  return warnings;
}

}  // namespace ocs::common
