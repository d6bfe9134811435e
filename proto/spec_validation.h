// Job-spec validation as an ocs.v1 message: the one translation that the coordinator's
// ValidateJob RPC and `ocsctl validate` share, so both report the same problems the same way.
#pragma once

#include "absl/strings/string_view.h"

#include "ocs/v1/job_service.pb.h"

namespace ocs::api {

ocs::v1::ValidateJobResponse ValidateJobSpec(absl::string_view spec_yaml, absl::string_view source);

}  // namespace ocs::api
