// The PruningJob YAML format: parsing with full validation, and the canonical emitted form.
#pragma once

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/spec_error.h"

namespace ocs::common {

// Specs larger than this are rejected before parsing: a job spec is a page of YAML.
inline constexpr size_t kMaxJobSpecBytes = 1 << 20;

// Parses and validates a job spec. On failure returns InvalidArgument listing every problem (see
// SpecErrorsToStatus); `errors`, when given, receives them as values. `source` names the text in
// messages (a file name, or "request").
absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view yaml_text, absl::string_view source,
                                     std::vector<SpecError>* errors = nullptr);

// A job spec file's text, at most kMaxJobSpecBytes; errors name the file (NotFound when it does
// not exist, InvalidArgument for a folder or a larger file, FailedPrecondition when unreadable).
absl::StatusOr<std::string> ReadJobSpecFile(const std::string& path);

// Reads and parses a file: ReadJobSpecFile's errors, or ParseJobSpec's.
absl::StatusOr<JobSpec> LoadJobSpecFile(const std::string& path,
                                        std::vector<SpecError>* errors = nullptr);

// The spec with every default written out; ParseJobSpec(FormatJobSpecYaml(s)) == s.
std::string FormatJobSpecYaml(const JobSpec& spec);

}  // namespace ocs::common
