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
CREATE INDEX IF NOT EXISTS jobs_by_update_time ON jobs (update_time_ms);
CREATE TABLE IF NOT EXISTS transitions (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  from_state TEXT,
  to_state TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_job ON transitions (job_id, seq);
CREATE TABLE IF NOT EXISTS boundaries (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  epoch INTEGER NOT NULL,
  phase TEXT NOT NULL,
  prune INTEGER NOT NULL,
  lambda REAL NOT NULL,
  j REAL,
  j_bar REAL,
  train_loss REAL NOT NULL,
  train_accuracy REAL NOT NULL,
  test_loss REAL NOT NULL,
  test_accuracy REAL NOT NULL,
  flops INTEGER NOT NULL,
  mask BLOB NOT NULL,
  time_ms INTEGER NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  params INTEGER NOT NULL DEFAULT 0,
  learning_rate REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, epoch)
);
CREATE TABLE IF NOT EXISTS artifacts (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, name)
);
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
  void Bind(int i, double value) { sqlite3_bind_double(stmt_, i, value); }
  void Bind(int i, std::optional<double> value) {
    value ? sqlite3_bind_double(stmt_, i, *value) : sqlite3_bind_null(stmt_, i);
  }
  void BindBlob(int i, absl::string_view bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
  double Double(int column) { return sqlite3_column_double(stmt_, column); }
  std::optional<double> OptionalDouble(int column) {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
    return Double(column);
  }
  int64_t Int(int column) { return sqlite3_column_int64(stmt_, column); }
  std::string Blob(int column) {
    const void* data = sqlite3_column_blob(stmt_, column);
    return data ? std::string(static_cast<const char*>(data), sqlite3_column_bytes(stmt_, column))
                : std::string();
  }
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

// A write a constraint refused: AlreadyExists (`duplicate`) only when the row's key is taken.
// Any other constraint (a NULL in a NOT NULL column, say) is a row this code should never have
// written: Internal, naming the constraint.
absl::Status ConstraintError(sqlite3* db, absl::string_view what, std::string duplicate) {
  const int code = sqlite3_extended_errcode(db);
  if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE) {
    return absl::AlreadyExistsError(std::move(duplicate));
  }
  return absl::InternalError(absl::StrCat("job store: ", what, ": ", sqlite3_errmsg(db)));
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
  // WAL with synchronous=NORMAL: a commit survives the process being killed (SIGKILL); only a
  // power loss could take the last ones.
  for (const char* sql : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;", kSchema}) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error ? error : "unknown error";
      sqlite3_free(error);
      sqlite3_close(db);
      return absl::UnavailableError(absl::StrCat("job store ", path, ": ", message));
    }
  }
  // Columns added since the first release: older stores gain them, with their defaults.
  for (const char* sql :
       {"ALTER TABLE boundaries ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE boundaries ADD COLUMN params INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE boundaries ADD COLUMN learning_rate REAL NOT NULL DEFAULT 0"}) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      sqlite3_free(error);  // "duplicate column name": the store has it already
    }
  }
  return std::unique_ptr<SqliteJobStore>(new SqliteJobStore(db));
}

SqliteJobStore::~SqliteJobStore() { sqlite3_close(db_); }

absl::Status SqliteJobStore::InTransaction(const std::function<absl::Status()>& body) {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error(db_, "begin");
  }
  absl::Status status = body();
  const char* end = status.ok() ? "COMMIT" : "ROLLBACK";
  if (sqlite3_exec(db_, end, nullptr, nullptr, nullptr) != SQLITE_OK && status.ok()) {
    status = Error(db_, "commit");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

absl::Status SqliteJobStore::AddTransitionLocked(absl::string_view id, std::optional<JobState> from,
                                                 JobState to, int64_t time_ms,
                                                 absl::string_view reason) {
  Statement s(db_,
              "INSERT INTO transitions (job_id, from_state, to_state, time_ms, reason) "
              "VALUES (?, ?, ?, ?, ?)");
  if (!s.ok()) return Error(db_, "insert transition");
  s.Bind(1, id);
  if (from) s.Bind(2, ToString(*from));
  s.Bind(3, ToString(to));
  s.Bind(4, time_ms);
  s.Bind(5, reason);
  if (sqlite3_step(s.get()) != SQLITE_DONE) return Error(db_, "insert transition");
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Create(const JobRecord& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  return InTransaction([&]() -> absl::Status {
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
      return ConstraintError(db_, "insert", absl::StrCat("job ", job.id, " already exists"));
    }
    if (result != SQLITE_DONE) return Error(db_, "insert");
    return AddTransitionLocked(job.id, std::nullopt, job.state, job.create_time_ms, "submitted");
  });
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
  std::string states;  // "?, ?, ..." for the IN list
  for (size_t i = 0; i < filter.states.size(); ++i) absl::StrAppend(&states, i ? ", ?" : "?");
  const std::string sql = absl::StrCat(
      "SELECT ", kColumns, " FROM jobs WHERE seq < ? AND update_time_ms >= ?",
      states.empty() ? "" : absl::StrCat(" AND state IN (", states, ")"), " ORDER BY seq DESC");
  Statement s(db_, sql.c_str());
  if (!s.ok()) return Error(db_, "list");
  s.Bind(1, before);
  s.Bind(2, filter.updated_since_ms);
  for (size_t i = 0; i < filter.states.size(); ++i) {
    s.Bind(static_cast<int>(i) + 3, ToString(filter.states[i]));
  }
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

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::RecentlyEnded(int64_t since_ms, int limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Walks the update-time index from the newest: a scrape reads the jobs it shows, not the store.
  // Named, because without statistics SQLite prefers the state index and sorts every ended job.
  Statement s(db_, absl::StrCat("SELECT ", kColumns,
                                " FROM jobs INDEXED BY jobs_by_update_time "
                                "WHERE update_time_ms >= ? AND state IN (?, ?, ?) "
                                "ORDER BY update_time_ms DESC, seq DESC LIMIT ?")
                       .c_str());
  if (!s.ok()) return Error(db_, "list ended");
  s.Bind(1, since_ms);
  s.Bind(2, ToString(JobState::kSucceeded));
  s.Bind(3, ToString(JobState::kFailed));
  s.Bind(4, ToString(JobState::kCancelled));
  s.Bind(5, int64_t{limit});
  std::vector<JobRecord> jobs;
  int result;
  while ((result = sqlite3_step(s.get())) == SQLITE_ROW) {
    int64_t seq = 0;
    jobs.push_back(ReadRow(s, &seq));
  }
  if (result != SQLITE_DONE) return Error(db_, "list ended");
  return jobs;
}

absl::StatusOr<std::map<JobState, int64_t>> SqliteJobStore::CountByState() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!s.ok()) return Error(db_, "count");
  std::map<JobState, int64_t> counts;
  int result;
  while ((result = sqlite3_step(s.get())) == SQLITE_ROW) {
    if (auto state = JobStateFromString(s.Text(0))) counts[*state] += s.Int(1);
  }
  if (result != SQLITE_DONE) return Error(db_, "count");
  return counts;
}

absl::StatusOr<JobRecord> SqliteJobStore::Transition(absl::string_view id, JobState to,
                                                     absl::string_view message, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  absl::StatusOr<JobRecord> job;
  const absl::Status status = InTransaction([&]() -> absl::Status {
    job = GetLocked(id);
    if (!job.ok()) return job.status();
    if (absl::Status allowed = CheckTransition(job->state, to); !allowed.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("job ", id, ": ", allowed.message()));
    }
    Statement s(db_,
                "UPDATE jobs SET state = ?, message = ?, update_time_ms = ?, "
                "restarts = restarts + ? WHERE id = ?");
    if (!s.ok()) return Error(db_, "update");
    const bool requeued = IsActive(job->state) && to == JobState::kPending;
    s.Bind(1, ToString(to));
    s.Bind(2, message);
    s.Bind(3, now_ms);
    s.Bind(4, int64_t{requeued ? 1 : 0});
    s.Bind(5, id);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return Error(db_, "update");
    if (absl::Status added = AddTransitionLocked(id, job->state, to, now_ms, message);
        !added.ok()) {
      return added;
    }
    job->state = to;
    job->message = std::string(message);
    job->update_time_ms = now_ms;
    job->restarts += requeued ? 1 : 0;
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return job;
}

absl::StatusOr<std::vector<TransitionRecord>> SqliteJobStore::History(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto job = GetLocked(id); !job.ok()) return job.status();
  Statement s(db_,
              "SELECT from_state, to_state, time_ms, reason FROM transitions WHERE job_id = ? "
              "ORDER BY seq");
  if (!s.ok()) return Error(db_, "history");
  s.Bind(1, id);
  std::vector<TransitionRecord> history;
  int result;
  while ((result = sqlite3_step(s.get())) == SQLITE_ROW) {
    TransitionRecord t;
    if (sqlite3_column_type(s.get(), 0) != SQLITE_NULL) t.from = JobStateFromString(s.Text(0));
    t.to = JobStateFromString(s.Text(1)).value_or(JobState::kFailed);
    t.time_ms = s.Int(2);
    t.reason = s.Text(3);
    history.push_back(std::move(t));
  }
  if (result != SQLITE_DONE) return Error(db_, "history");
  return history;
}

absl::Status SqliteJobStore::AddBoundary(absl::string_view id, const BoundaryRecord& b) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto job = GetLocked(id); !job.ok()) return job.status();
  Statement s(db_,
              "INSERT INTO boundaries (job_id, epoch, phase, prune, lambda, j, j_bar, train_loss, "
              "train_accuracy, test_loss, test_accuracy, flops, mask, time_ms, attempt, params, "
              "learning_rate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return Error(db_, "insert boundary");
  s.Bind(1, id);
  s.Bind(2, int64_t{b.epoch});
  s.Bind(3, b.phase);
  s.Bind(4, int64_t{b.prune ? 1 : 0});
  s.Bind(5, b.lambda);
  s.Bind(6, b.j);
  s.Bind(7, b.j_bar);
  s.Bind(8, b.train_loss);
  s.Bind(9, b.train_accuracy);
  s.Bind(10, b.test_loss);
  s.Bind(11, b.test_accuracy);
  s.Bind(12, b.flops);
  s.BindBlob(13, b.mask);
  s.Bind(14, b.time_ms);
  s.Bind(15, int64_t{b.attempt});
  s.Bind(16, b.params);
  s.Bind(17, b.learning_rate);
  const int result = sqlite3_step(s.get());
  if (result == SQLITE_CONSTRAINT) {
    return ConstraintError(
        db_, absl::StrCat("insert the boundary before epoch ", b.epoch, " of job ", id),
        absl::StrCat("job ", id, ": the boundary before epoch ", b.epoch, " is stored already"));
  }
  if (result != SQLITE_DONE) return Error(db_, "insert boundary");
  return absl::OkStatus();
}

absl::Status SqliteJobStore::DropBoundariesFrom(absl::string_view id, int epoch) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_, "DELETE FROM boundaries WHERE job_id = ? AND epoch >= ?");
  if (!s.ok()) return Error(db_, "drop boundaries");
  s.Bind(1, id);
  s.Bind(2, int64_t{epoch});
  if (sqlite3_step(s.get()) != SQLITE_DONE) return Error(db_, "drop boundaries");
  return absl::OkStatus();
}

absl::Status SqliteJobStore::PutArtifact(absl::string_view id, const ArtifactRecord& a) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto job = GetLocked(id); !job.ok()) return job.status();
  Statement s(db_,
              "INSERT OR REPLACE INTO artifacts (job_id, name, path, size_bytes, time_ms) "
              "VALUES (?, ?, ?, ?, ?)");
  if (!s.ok()) return Error(db_, "insert artifact");
  s.Bind(1, id);
  s.Bind(2, a.name);
  s.Bind(3, a.path);
  s.Bind(4, a.size_bytes);
  s.Bind(5, a.time_ms);
  if (sqlite3_step(s.get()) != SQLITE_DONE) return Error(db_, "insert artifact");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ArtifactRecord>> SqliteJobStore::Artifacts(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto job = GetLocked(id); !job.ok()) return job.status();
  Statement s(db_,
              "SELECT name, path, size_bytes, time_ms FROM artifacts WHERE job_id = ? "
              "ORDER BY name");
  if (!s.ok()) return Error(db_, "artifacts");
  s.Bind(1, id);
  std::vector<ArtifactRecord> artifacts;
  int result;
  while ((result = sqlite3_step(s.get())) == SQLITE_ROW) {
    artifacts.push_back({s.Text(0), s.Text(1), s.Int(2), s.Int(3)});
  }
  if (result != SQLITE_DONE) return Error(db_, "artifacts");
  return artifacts;
}

absl::StatusOr<std::vector<BoundaryRecord>> SqliteJobStore::Boundaries(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto job = GetLocked(id); !job.ok()) return job.status();
  Statement s(db_,
              "SELECT epoch, phase, prune, lambda, j, j_bar, train_loss, train_accuracy, "
              "test_loss, test_accuracy, flops, mask, time_ms, attempt, params, learning_rate "
              "FROM boundaries WHERE job_id = ? "
              "ORDER BY epoch");
  if (!s.ok()) return Error(db_, "boundaries");
  s.Bind(1, id);
  std::vector<BoundaryRecord> boundaries;
  int result;
  while ((result = sqlite3_step(s.get())) == SQLITE_ROW) {
    BoundaryRecord b;
    b.epoch = static_cast<int>(s.Int(0));
    b.phase = s.Text(1);
    b.prune = s.Int(2) != 0;
    b.lambda = s.Double(3);
    b.j = s.OptionalDouble(4);
    b.j_bar = s.OptionalDouble(5);
    b.train_loss = s.Double(6);
    b.train_accuracy = s.Double(7);
    b.test_loss = s.Double(8);
    b.test_accuracy = s.Double(9);
    b.flops = s.Int(10);
    b.mask = s.Blob(11);
    b.time_ms = s.Int(12);
    b.attempt = static_cast<int>(s.Int(13));
    b.params = s.Int(14);
    b.learning_rate = s.Double(15);
    boundaries.push_back(std::move(b));
  }
  if (result != SQLITE_DONE) return Error(db_, "boundaries");
  return boundaries;
}

}  // namespace ocs::server
