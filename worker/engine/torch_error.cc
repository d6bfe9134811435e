#include "worker/engine/torch_error.h"

#include <vector>

#include <c10/util/Exception.h>

#include "absl/strings/str_split.h"

namespace ocs::worker::engine {

std::string DescribeTorchError(const std::exception& e) {
  if (const auto* error = dynamic_cast<const c10::Error*>(&e)) {
    return error->what_without_backtrace();
  }
  std::vector<absl::string_view> lines = absl::StrSplit(e.what(), '\n', absl::SkipWhitespace());
  return lines.empty() ? "unknown error" : std::string(lines.back());
}

}  // namespace ocs::worker::engine
