// Advice on a valid job spec: settings that run but are unlikely to do what the user meant.
// Validation still passes; ocsctl and the worker print these as warnings.
#pragma once

#include <vector>

#include "common/job_spec.h"
#include "common/spec_error.h"

namespace ocs::common {

// Each warning names its field like a SpecError (no line: the spec is already parsed).
std::vector<SpecError> JobSpecWarnings(const JobSpec& spec);

}  // namespace ocs::common
