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

// A job's life: pending (queued), then running through the phases of one-cycle pruning —
// scheduled (ranks assigned, before the first boundary), dense, sparsity learning, pruned
// (fine-tuning) — and ending succeeded, failed or cancelled.
enum class JobState {
  kPending,
  kScheduled,
  kDense,
  kSparsityLearning,
  kPruned,
  kSucceeded,
  kFailed,
  kCancelled
};

const char* ToString(JobState state);
std::optional<JobState> JobStateFromString(absl::string_view text);
bool IsTerminal(JobState state);
// Scheduled, dense, sparsity learning or pruned: the job holds its workers' slots.
bool IsActive(JobState state);
// Every state, in life order.
inline constexpr JobState kAllStates[] = {
    JobState::kPending, JobState::kScheduled, JobState::kDense,  JobState::kSparsityLearning,
    JobState::kPruned,  JobState::kSucceeded, JobState::kFailed, JobState::kCancelled};
// The running phases, in order.
inline constexpr JobState kActiveStates[] = {JobState::kScheduled, JobState::kDense,
                                             JobState::kSparsityLearning, JobState::kPruned};
// OK when a job may move from `from` to `to`; FailedPrecondition naming both otherwise.
//   pending -> scheduled | cancelled | failed (a queued restart called off)
//   active  -> another running phase (not back to scheduled) | succeeded | failed | cancelled |
//              pending (requeued after a lost worker or a coordinator restart)
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

// One state change, as stored: the job's history.
struct TransitionRecord {
  std::optional<JobState> from;  // none for the submission
  JobState to = JobState::kPending;
  int64_t time_ms = 0;
  std::string reason;
};

// One epoch boundary of a running job, stored before its verdict is sent: the metrics of the
// epoch that ended (rank 0's), the stability point, and the decision for the epoch to come.
struct BoundaryRecord {
  int epoch = 0;       // the epoch about to start
  std::string phase;   // dense | sparsity | pruned (common::ToString(Phase))
  bool prune = false;  // the verdict: prune now
  double lambda = 0;
  std::optional<double> j, j_bar;
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
  int64_t flops = 0, params = 0;  // of the network during the epoch that ended
  double learning_rate = 0;       // at its last step
  std::string mask;               // common::EncodeMask bytes; empty when none was due
  int64_t time_ms = 0;
  int attempt = 0;  // the job's attempt (restarts so far) that decided it
};

// A file a job produced, kept in the coordinator's data folder.
struct ArtifactRecord {
  std::string name;  // model.pt | report.json
  std::string path;
  int64_t size_bytes = 0;
  int64_t time_ms = 0;
};

struct JobFilter {
  std::vector<JobState> states;               // any of them; empty: any state
  std::map<std::string, std::string> labels;  // all must match
  int64_t updated_since_ms = 0;               // last changed at or after this time
};

struct JobPage {
  std::vector<JobRecord> jobs;
  std::string next_page_token;  // empty on the last page
};

}  // namespace ocs::server
