// How jobs that stopped running on the fleet ended, put into the store. A store that refuses an
// end (a full disk) would leave the job running there with nothing running it, so a refused end
// is kept and retried until the store takes it or the job moves on.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/job_store.h"

namespace ocs::server {

// Not thread-safe: JobRunner calls it under its own lock.
class JobEnds {
 public:
  explicit JobEnds(JobStore& store) : store_(store) {}

  // Stores that `job_id` ended in `state` (kPending: it goes back to the queue); true when the
  // store took it. A refusal is logged once and kept for Retry, in place of an earlier end of the
  // job still kept (a restart called off). A job that moved on meanwhile (cancelled through the
  // API) or is gone is let go.
  bool Settle(const std::string& job_id, JobState state, const std::string& message,
              int64_t time_ms);
  // Stores the ends the store refused before; returns the ids stored now.
  std::vector<std::string> Retry();
  // Whether an end of `job_id` the store refused is kept for Retry.
  bool HasRefusedEnd(const std::string& job_id) const { return refused_.count(job_id) > 0; }

 private:
  struct End {
    JobState state;
    std::string message;
    int64_t time_ms = 0;
  };

  bool Store(const std::string& job_id, const End& end);

  JobStore& store_;
  std::map<std::string, End> refused_;  // by job id
};

}  // namespace ocs::server
