// The network a job spec describes and its channel groups, from the Torch-free core. The
// coordinator checks each mask against these groups, and spec validation (ocsctl, ValidateJob,
// SubmitJob) rejects a spec whose model cannot be built or grouped before the job is queued,
// instead of failing the job at its first mask.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/spec_error.h"
#include "worker/engine/channel_groups.h"

namespace ocs::worker::engine {

absl::StatusOr<ChannelGroups> JobChannelGroups(const common::JobSpec& spec);

// Why JobChannelGroups fails for `spec`, as spec errors (none when it succeeds).
std::vector<common::SpecError> JobModelErrors(const common::JobSpec& spec);

}  // namespace ocs::worker::engine
