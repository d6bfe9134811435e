// JobStore on a SQLite file (WAL journal, one connection guarded by a mutex: the coordinator's
// write rate is a few rows per epoch boundary).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/job_store.h"

struct sqlite3;

namespace ocs::server {

class SqliteJobStore final : public JobStore {
 public:
  // Opens (creating if needed) the database at `path`; Unavailable naming the file on failure.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const std::string& path);
  ~SqliteJobStore() override;

  absl::Status Create(const JobRecord& job) override;
  absl::StatusOr<JobRecord> Get(absl::string_view id) override;
  absl::StatusOr<JobPage> List(const JobFilter& filter, int page_size,
                               absl::string_view page_token) override;
  absl::StatusOr<std::vector<JobRecord>> RecentlyEnded(int64_t since_ms, int limit) override;
  absl::StatusOr<std::map<JobState, int64_t>> CountByState() override;
  absl::StatusOr<JobRecord> Transition(absl::string_view id, JobState to, absl::string_view message,
                                       int64_t now_ms) override;
  absl::StatusOr<std::vector<TransitionRecord>> History(absl::string_view id) override;
  absl::Status AddBoundary(absl::string_view id, const BoundaryRecord& boundary) override;
  absl::Status DropBoundariesFrom(absl::string_view id, int epoch) override;
  absl::Status PutArtifact(absl::string_view id, const ArtifactRecord& artifact) override;
  absl::StatusOr<std::vector<ArtifactRecord>> Artifacts(absl::string_view id) override;
  absl::StatusOr<std::vector<BoundaryRecord>> Boundaries(absl::string_view id) override;

 private:
  explicit SqliteJobStore(sqlite3* db) : db_(db) {}
  absl::StatusOr<JobRecord> GetLocked(absl::string_view id);
  absl::Status AddTransitionLocked(absl::string_view id, std::optional<JobState> from, JobState to,
                                   int64_t time_ms, absl::string_view reason);
  // Runs `body` in one SQLite transaction: all of its writes or none.
  absl::Status InTransaction(const std::function<absl::Status()>& body);

  std::mutex mutex_;
  sqlite3* db_;
};

}  // namespace ocs::server
