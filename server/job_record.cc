#include "server/job_record.h"

#include "absl/strings/str_cat.h"

namespace ocs::server {

const char* ToString(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "pending";
    case JobState::kScheduled:
      return "scheduled";
    case JobState::kDense:
      return "dense";
    case JobState::kSparsityLearning:
      return "sparsity-learning";
    case JobState::kPruned:
      return "pruned";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<JobState> JobStateFromString(absl::string_view text) {
  for (JobState state : kAllStates) {
    if (text == ToString(state)) return state;
  }
  if (text == "running") return JobState::kScheduled;  // stores written before the phases
  return std::nullopt;
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

bool IsActive(JobState state) { return !IsTerminal(state) && state != JobState::kPending; }

absl::Status CheckTransition(JobState from, JobState to) {
  // A pending job fails only when a restart is called off: the attempt it replaces turned out to
  // have failed for a reason of the job's own (JobRunner::CallOffRestart).
  const bool allowed =
      (from == JobState::kPending &&
       (to == JobState::kScheduled || to == JobState::kCancelled || to == JobState::kFailed)) ||
      (IsActive(from) && to != from && to != JobState::kScheduled);
  if (allowed) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("a ", ToString(from), " job cannot become ", ToString(to)));
}

}  // namespace ocs::server
