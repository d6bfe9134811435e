#include "common/spec_error.h"

#include "absl/strings/str_cat.h"

namespace ocs::common {

std::string FormatSpecError(const SpecError& error, absl::string_view source) {
  std::string text =
      absl::StrCat(error.field.empty() ? "(document)" : error.field, ": ", error.problem);
  if (error.line > 0) {
    absl::StrAppend(&text, " (", source, ":", error.line, ":", error.column, ")");
  } else if (!source.empty()) {
    absl::StrAppend(&text, " (", source, ")");
  }
  return text;
}

absl::Status SpecErrorsToStatus(const std::vector<SpecError>& errors, absl::string_view source) {
  if (errors.empty()) return absl::OkStatus();
  std::string message = absl::StrCat("invalid job spec ", source, ": ", errors.size(),
                                     errors.size() == 1 ? " problem" : " problems");
  for (const SpecError& error : errors) {
    absl::StrAppend(&message, "\n  ", FormatSpecError(error, source));
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace ocs::common
