#include "worker/engine/torch_error.h"

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
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  if (error == nullptr) return false;
  const absl::string_view what = error->what_without_backtrace();
  // The CPU allocator's words, before and after PyTorch 2.x, and CUDA's where it is not typed.
  for (absl::string_view words : {"can't allocate memory", "not enough memory", "out of memory"}) {
    if (absl::StrContains(what, words)) return true;
  }
  return false;
}

}  // namespace ocs::worker::engine
