// Looking at what a test left in a folder.
#pragma once

#include <string>
#include <vector>

namespace ocs::testing {

// The names (not paths) of everything directly in `dir`, sorted, so a test can compare a
// folder's contents with one ElementsAre.
std::vector<std::string> SortedFileNames(const std::string& dir);

}  // namespace ocs::testing
