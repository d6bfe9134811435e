#include "server/job_ends.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace ocs::server {

bool JobEnds::Settle(const std::string& job_id, JobState state, const std::string& message,
                     int64_t time_ms) {
  return Store(job_id, {state, message, time_ms});
}

std::vector<std::string> JobEnds::Retry() {
  std::vector<std::string> stored;
  const std::map<std::string, End> waiting = refused_;  // Store erases from it
  for (const auto& [id, end] : waiting) {
    if (Store(id, end)) stored.push_back(id);
  }
  return stored;
}

bool JobEnds::Store(const std::string& job_id, const End& end) {
  auto moved = store_.Transition(job_id, end.state, end.message, end.time_ms);
  // A refused transition: the job moved on meanwhile (cancelled through the API) or is gone.
  if (absl::IsFailedPrecondition(moved.status()) || absl::IsNotFound(moved.status())) {
    refused_.erase(job_id);
    return false;
  }
  if (moved.ok()) {
    if (refused_.erase(job_id)) {
      common::LogInfo(absl::StrCat("the store took the job's end at last: ", ToString(end.state)),
                      {job_id});
    }
    return true;
  }
  // Loudly, once per end. A later end replaces one still waiting: a restart called off.
  const auto waiting = refused_.find(job_id);
  if (waiting == refused_.end() || waiting->second.state != end.state) {
    common::LogError(absl::StrCat("the store refused the job's end (", ToString(end.state),
                                  "): ", moved.status().message(), "; retrying every second"),
                     {job_id});
  }
  refused_.insert_or_assign(job_id, end);
  return false;
}

}  // namespace ocs::server
