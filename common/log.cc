#include "common/log.h"

#include <spdlog/spdlog.h>

namespace ocs::common {

void LogInfo(absl::string_view message) { spdlog::info("{}", std::string(message)); }
void LogWarning(absl::string_view message) { spdlog::warn("{}", std::string(message)); }
void LogError(absl::string_view message) { spdlog::error("{}", std::string(message)); }
void SetLogPattern(const std::string& pattern) { spdlog::set_pattern(pattern); }

}  // namespace ocs::common
