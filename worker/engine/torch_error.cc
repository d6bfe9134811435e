#include "worker/engine/torch_error.h"

#include <new>
#include <vector>

#include <c10/util/Exception.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace ocs::worker::engine {

std::string DescribeTorchError(const std::exception& e) {
  if (const auto* error = dynamic_cast<const c10::Error*>(&e)) {
    return error->what_without_backtrace();
  }
  std::vector<absl::string_view> lines = absl::StrSplit(e.what(), '\n', absl::SkipWhitespace());
  return lines.empty() ? "unknown error" : std::string(lines.back());
}

bool IsOutOfMemory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr) return true;
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return true;
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  if (error == nullptr) return false;
  const absl::string_view what = error->what_without_backtrace();
  for (absl::string_view words : {"can't allocate memory", "out of memory", "ALLOC_FAILED"}) {
    if (absl::StrContains(what, words)) return true;
  }
  return false;
}

}  // namespace ocs::worker::engine
