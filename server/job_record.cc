#include "server/job_record.h"

#include "absl/strings/str_cat.h"

namespace ocs::server {

const char* ToString(JobState state) {
  switch (state) {
    case JobState::kPending:
      return "pending";
    case JobState::kRunning:
      return "running";
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
  for (JobState state : {JobState::kPending, JobState::kRunning, JobState::kSucceeded,
                         JobState::kFailed, JobState::kCancelled}) {
    if (text == ToString(state)) return state;
  }
  return std::nullopt;
}

bool IsTerminal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

absl::Status CheckTransition(JobState from, JobState to) {
  const bool allowed =
      (from == JobState::kPending && (to == JobState::kRunning || to == JobState::kCancelled)) ||
      (from == JobState::kRunning && (to == JobState::kSucceeded || to == JobState::kFailed ||
                                      to == JobState::kCancelled || to == JobState::kPending));
  if (allowed) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("a ", ToString(from), " job cannot become ", ToString(to)));
}

}  // namespace ocs::server
