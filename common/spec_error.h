// One problem found in a user-supplied spec, and how it reads on a terminal or in an RPC status.
#pragma once

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace ocs::common {

struct SpecError {
  std::string field;    // dotted path, e.g. "spec.pruning.targetFlopsReduction"
  std::string problem;  // e.g. "must be in (0, 1), got 1.5"
  int line = 0;         // 1-based; 0 when unknown
  int column = 0;

  bool operator==(const SpecError&) const = default;
};

// "spec.pruning.targetFlopsReduction: must be in (0, 1), got 1.5 (job.yaml:14:27)"
std::string FormatSpecError(const SpecError& error, absl::string_view source);

// InvalidArgument whose message lists every problem, one per line, after a summary line.
absl::Status SpecErrorsToStatus(const std::vector<SpecError>& errors, absl::string_view source);

}  // namespace ocs::common
