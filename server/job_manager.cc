#include "server/job_manager.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
#include "server/ids.h"
#include "worker/engine/job_model.h"

namespace ocs::server {

int64_t SystemClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

JobManager::JobManager(JobStore& store, Clock clock) : store_(store), clock_(std::move(clock)) {}

absl::StatusOr<JobRecord> JobManager::Submit(absl::string_view spec_yaml,
                                             absl::string_view source) {
  const absl::string_view name = source.empty() ? "request" : source;
  auto spec = common::ParseJobSpec(spec_yaml, name);
  if (!spec.ok()) return spec.status();
  if (auto errors = worker::engine::JobModelErrors(*spec); !errors.empty()) {
    return common::SpecErrorsToStatus(errors, name);
  }
  JobRecord job;
  job.name = spec->metadata.name;
  job.labels = spec->metadata.labels;
  job.spec_yaml = common::FormatJobSpecYaml(*spec);
  job.create_time_ms = job.update_time_ms = clock_();
  for (int attempt = 0; attempt < 8; ++attempt) {
    job.id = absl::StrCat(job.name, "-", RandomIdSuffix(5));
    absl::Status created = store_.Create(job);
    if (created.ok()) {
      if (on_submitted_) on_submitted_();
      return job;
    }
    if (!absl::IsAlreadyExists(created)) return created;
  }
  return absl::ResourceExhaustedError(absl::StrCat("no free job id for ", job.name));
}

absl::StatusOr<JobRecord> JobManager::Get(absl::string_view id) { return store_.Get(id); }

absl::StatusOr<JobPage> JobManager::List(const JobFilter& filter, int page_size,
                                         absl::string_view page_token) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be in [0, ", kMaxPageSize, "], got ", page_size));
  }
  return store_.List(filter, page_size == 0 ? kDefaultPageSize : page_size, page_token);
}

absl::StatusOr<JobRecord> JobManager::Cancel(absl::string_view id, absl::string_view reason) {
  auto job = store_.Transition(id, JobState::kCancelled,
                               reason.empty() ? "cancelled by the user" : reason, clock_());
  if (job.ok() && on_cancelled_) on_cancelled_(job->id, job->message);
  return job;
}

}  // namespace ocs::server
