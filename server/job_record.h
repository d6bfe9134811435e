// A job as the coordinator keeps it: plain C++, shared by the store, the scheduler and the RPC
// adapters (which translate it to ocs.v1.Job).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ocs::server {

enum class JobState { kPending, kRunning, kSucceeded, kFailed, kCancelled };

const char* ToString(JobState state);
std::optional<JobState> JobStateFromString(absl::string_view text);
bool IsTerminal(JobState state);
// OK when a job may move from `from` to `to`; FailedPrecondition naming both otherwise.
//   pending -> running | cancelled;  running -> succeeded | failed | cancelled | pending (requeued)
absl::Status CheckTransition(JobState from, JobState to);

struct JobRecord {
  std::string id;    // "<name>-<5 random chars>", unique
  std::string name;  // metadata.name
  std::map<std::string, std::string> labels;
  JobState state = JobState::kPending;
  std::string spec_yaml;  // the canonical spec (common::FormatJobSpecYaml)
  int64_t create_time_ms = 0;
  int64_t update_time_ms = 0;
  std::string message;  // why it failed or was cancelled
  int restarts = 0;
};

struct JobFilter {
  std::optional<JobState> state;
  std::map<std::string, std::string> labels;  // all must match
};

struct JobPage {
  std::vector<JobRecord> jobs;
  std::string next_page_token;  // empty on the last page
};

}  // namespace ocs::server
