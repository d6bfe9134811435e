#include "tests/support/files.h"

#include <algorithm>
#include <filesystem>

namespace ocs::testing {

std::vector<std::string> SortedFileNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace ocs::testing
