// How a rank that stopped short of its end tells the coordinator, in service mode: the message,
// and whose fault it was, which decides whether the job restarts.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "worker/agent/coordinator_session.h"

namespace ocs::worker::commands {

struct RankStop {
  std::string message;
  agent::RankFailure failure = agent::RankFailure::kOfTheJob;
};

// `status`: why the rank stopped; `other_ranks`: how many ranks ran beside it on this worker,
// sharing its memory and device.
RankStop DescribeStop(const absl::Status& status, int other_ranks);

}  // namespace ocs::worker::commands
