// `ocsctl validate FILE`: checks a job spec locally, no coordinator needed.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace ocs::v1 {
class ValidateJobResponse;
}

namespace ocs::client {

struct ValidateOptions {
  std::string file;
  std::string output = "text";  // text | yaml | json
};

// Adds the subcommand to `app`; `options` must outlive parsing.
CLI::App* AddValidateCommand(CLI::App& app, ValidateOptions* options);

// Runs it; returns the exit code.
int RunValidate(const ValidateOptions& options);

// Prints a failed validation's problems to stderr, one per line after a summary line.
void PrintSpecProblems(const ocs::v1::ValidateJobResponse& result, const std::string& source);
// Prints a valid spec's warnings to stderr, one "warning: ..." line each.
void PrintSpecWarnings(const ocs::v1::ValidateJobResponse& result, const std::string& source);

}  // namespace ocs::client
