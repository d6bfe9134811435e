#include "server/sqlite_job_store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ocs::server {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  labels TEXT NOT NULL,
  state TEXT NOT NULL,
  spec_yaml TEXT NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL,
  message TEXT NOT NULL,
  restarts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
)sql";

constexpr char kColumns[] =
    "seq, id, name, labels, state, spec_yaml, create_time_ms, update_time_ms, message, restarts";

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    status_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return status_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Bind(int i, absl::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t value) { sqlite3_bind_int64(stmt_, i, value); }
  std::string Text(int column) {
    const auto* text = sqlite3_column_text(stmt_, column);
    return text ? std::string(reinterpret_cast<const char*>(text)) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int status_ = SQLITE_ERROR;
};

absl::Status Error(sqlite3* db, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("job store: ", what, ": ", sqlite3_errmsg(db)));
}

// Reads the row the statement stands on; sets *seq.
JobRecord ReadRow(Statement& s, int64_t* seq) {
  JobRecord job;
  *seq = sqlite3_column_int64(s.get(), 0);
  job.id = s.Text(1);
  job.name = s.Text(2);
  job.labels = nlohmann::json::parse(s.Text(3)).get<std::map<std::string, std::string>>();
  job.state = JobStateFromString(s.Text(4)).value_or(JobState::kFailed);
  job.spec_yaml = s.Text(5);
  job.create_time_ms = sqlite3_column_int64(s.get(), 6);
  job.update_time_ms = sqlite3_column_int64(s.get(), 7);
  job.message = s.Text(8);
  job.restarts = static_cast<int>(sqlite3_column_int64(s.get(), 9));
  return job;
}

bool LabelsMatch(const JobRecord& job, const std::map<std::string, std::string>& selector) {
  for (const auto& [key, value] : selector) {
    const auto it = job.labels.find(key);
    if (it == job.labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("job store ", path, ": ", message));
  }
  sqlite3_busy_timeout(db, 5000);
  char* error = nullptr;
  for (const char* sql : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;", kSchema}) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error ? error : "unknown error";
      sqlite3_free(error);
      sqlite3_close(db);
      return absl::UnavailableError(absl::StrCat("job store ", path, ": ", message));
    }
  }
  return std::unique_ptr<SqliteJobStore>(new SqliteJobStore(db));
}

SqliteJobStore::~SqliteJobStore() { sqlite3_close(db_); }

absl::Status SqliteJobStore::Create(const JobRecord& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_,
              "INSERT INTO jobs (id, name, labels, state, spec_yaml, create_time_ms, "
              "update_time_ms, message, restarts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return Error(db_, "insert");
  s.Bind(1, job.id);
  s.Bind(2, job.name);
  s.Bind(3, nlohmann::json(job.labels).dump());
  s.Bind(4, ToString(job.state));
  s.Bind(5, job.spec_yaml);
  s.Bind(6, job.create_time_ms);
  s.Bind(7, job.update_time_ms);
  s.Bind(8, job.message);
  s.Bind(9, int64_t{job.restarts});
  const int result = sqlite3_step(s.get());
  if (result == SQLITE_CONSTRAINT) {
    return absl::AlreadyExistsError(absl::StrCat("job ", job.id, " already exists"));
  }
  if (result != SQLITE_DONE) return Error(db_, "insert");
  return absl::OkStatus();
}

absl::StatusOr<JobRecord> SqliteJobStore::GetLocked(absl::string_view id) {
  Statement s(db_, absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE id = ?").c_str());
  if (!s.ok()) return Error(db_, "select");
  s.Bind(1, id);
  const int result = sqlite3_step(s.get());
  if (result == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("no job \"", id, "\""));
  if (result != SQLITE_ROW) return Error(db_, "select");
  int64_t seq = 0;
  return ReadRow(s, &seq);
}

absl::StatusOr<JobRecord> SqliteJobStore::Get(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return GetLocked(id);
}

absl::StatusOr<JobPage> SqliteJobStore::List(const JobFilter& filter, int page_size,
                                             absl::string_view page_token) {
  int64_t before = INT64_MAX;
  if (!page_token.empty() && (!absl::SimpleAtoi(page_token, &before) || before <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("bad page token \"", page_token, "\""));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string sql = absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE seq < ?",
                                       filter.state ? " AND state = ?" : "", " ORDER BY seq DESC");
  Statement s(db_, sql.c_str());
  if (!s.ok()) return Error(db_, "list");
  s.Bind(1, before);
  if (filter.state) s.Bind(2, ToString(*filter.state));
  JobPage page;
  int64_t last_seq = 0;
  int result;
  while ((result = sqlite3_step(s.get())) == SQLITE_ROW) {
    int64_t seq = 0;
    JobRecord job = ReadRow(s, &seq);
    if (!LabelsMatch(job, filter.labels)) continue;
    if (static_cast<int>(page.jobs.size()) == page_size) {
      page.next_page_token = absl::StrCat(last_seq);  // more rows match: continue after the last
      break;
    }
    page.jobs.push_back(std::move(job));
    last_seq = seq;
  }
  if (result != SQLITE_ROW && result != SQLITE_DONE) return Error(db_, "list");
  return page;
}

absl::StatusOr<JobRecord> SqliteJobStore::Transition(absl::string_view id, JobState to,
                                                     absl::string_view message, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto job = GetLocked(id);
  if (!job.ok()) return job.status();
  if (absl::Status allowed = CheckTransition(job->state, to); !allowed.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id, ": ", allowed.message()));
  }
  // Compare-and-set on the state read above: a concurrent transition makes this one fail.
  Statement s(db_,
              "UPDATE jobs SET state = ?, message = ?, update_time_ms = ?, restarts = restarts + ? "
              "WHERE id = ? AND state = ?");
  if (!s.ok()) return Error(db_, "update");
  const bool requeued = job->state == JobState::kRunning && to == JobState::kPending;
  s.Bind(1, ToString(to));
  s.Bind(2, message);
  s.Bind(3, now_ms);
  s.Bind(4, int64_t{requeued ? 1 : 0});
  s.Bind(5, id);
  s.Bind(6, ToString(job->state));
  if (sqlite3_step(s.get()) != SQLITE_DONE) return Error(db_, "update");
  if (sqlite3_changes(db_) != 1) {
    return absl::AbortedError(absl::StrCat("job ", id, " changed concurrently"));
  }
  job->state = to;
  job->message = std::string(message);
  job->update_time_ms = now_ms;
  job->restarts += requeued ? 1 : 0;
  return job;
}

}  // namespace ocs::server
