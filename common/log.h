// Logging for translation units that must not include spdlog: those that include LibTorch, whose
// 2.x releases ship their own {fmt} headers, which shadow the {fmt} Debian's spdlog was built
// against. Callers format the message themselves (absl::StrFormat, absl::StrCat).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace ocs::common {

void LogInfo(absl::string_view message);
void LogWarning(absl::string_view message);
void LogError(absl::string_view message);
// spdlog's pattern syntax, e.g. "[%H:%M:%S] [%l] %v".
void SetLogPattern(const std::string& pattern);

}  // namespace ocs::common
