#include "worker/commands/rank_stop.h"

#include "absl/strings/str_cat.h"
#include "worker/train/trainer.h"

namespace ocs::worker::commands {

// Cut off from its peers (one died mid-collective or never joined the rendezvous): nothing wrong
// with the job, and a restart may get past it. Out of memory is the job's sizes, and a restart
// would stop at the same place, unless other ranks shared this worker's memory and may have
// taken it. Anything else (the spec, the data, the coordinator's cancel) is the job's.
RankStop DescribeStop(const absl::Status& status, int other_ranks) {
  RankStop stop{std::string(status.message())};
  if (train::IsOutOfMemoryStop(status)) {
    if (other_ranks == 0) return {stop.message, agent::RankFailure::kOutOfMemory};
    absl::StrAppend(&stop.message, " (beside ", other_ranks,
                    " other rank(s) sharing this worker's memory: may restart)");
    stop.failure = agent::RankFailure::kRetryable;
  } else if (absl::IsAborted(status) || absl::IsUnavailable(status)) {
    stop.failure = agent::RankFailure::kRetryable;
  }
  return stop;
}

}  // namespace ocs::worker::commands
