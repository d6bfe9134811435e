// Where the coordinator persists jobs. One interface, so the SQLite store of a single coordinator
// can give way to a server database later; tests use a SQLite file in a temporary folder.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "server/job_record.h"

namespace ocs::server {

class JobStore {
 public:
  virtual ~JobStore() = default;
  // AlreadyExists when the id is taken.
  virtual absl::Status Create(const JobRecord& job) = 0;
  // NotFound naming the id.
  virtual absl::StatusOr<JobRecord> Get(absl::string_view id) = 0;
  // Newest first; `page_token` continues a previous page; InvalidArgument for a bad token.
  virtual absl::StatusOr<JobPage> List(const JobFilter& filter, int page_size,
                                       absl::string_view page_token) = 0;
  // Jobs that ended (succeeded, failed, cancelled) at or after `since_ms`, the most recently ended
  // first, at most `limit` of them.
  virtual absl::StatusOr<std::vector<JobRecord>> RecentlyEnded(int64_t since_ms, int limit) = 0;
  // How many jobs are in each state (states without jobs are absent).
  virtual absl::StatusOr<std::map<JobState, int64_t>> CountByState() = 0;
  // Moves a job to `to` if CheckTransition allows it from its current state, atomically.
  virtual absl::StatusOr<JobRecord> Transition(absl::string_view id, JobState to,
                                               absl::string_view message, int64_t now_ms) = 0;
  // Every state change of the job, oldest first (Create and Transition record them).
  virtual absl::StatusOr<std::vector<TransitionRecord>> History(absl::string_view id) = 0;
  // Stores one boundary; AlreadyExists when that epoch's boundary is stored already (a record
  // is never duplicated), NotFound for an unknown job, Internal for a value the store cannot hold
  // (a NaN metric: callers check them first).
  virtual absl::Status AddBoundary(absl::string_view id, const BoundaryRecord& boundary) = 0;
  // Drops the boundaries from `epoch` on (a restarted job decides them again).
  virtual absl::Status DropBoundariesFrom(absl::string_view id, int epoch) = 0;
  // Records (or replaces) the job's artifact of that name; NotFound for an unknown job.
  virtual absl::Status PutArtifact(absl::string_view id, const ArtifactRecord& artifact) = 0;
  virtual absl::StatusOr<std::vector<ArtifactRecord>> Artifacts(absl::string_view id) = 0;
  // The job's boundaries in epoch order.
  virtual absl::StatusOr<std::vector<BoundaryRecord>> Boundaries(absl::string_view id) = 0;
};

// Every job the filter selects, newest first, across all pages (none when the store fails).
inline std::vector<JobRecord> ListAllJobs(JobStore& store, const JobFilter& filter) {
  std::vector<JobRecord> jobs;
  std::string token;
  do {
    auto page = store.List(filter, 500, token);
    if (!page.ok()) break;
    jobs.insert(jobs.end(), page->jobs.begin(), page->jobs.end());
    token = page->next_page_token;
  } while (!token.empty());
  return jobs;
}

}  // namespace ocs::server
