// "Did you mean ...?" for misspelled names (fields, architectures, enum values).
#pragma once

#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

namespace ocs::common {

// Levenshtein distance, case-insensitive (so "targetflopsreduction" matches exactly).
int EditDistance(absl::string_view a, absl::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo: at most
// max(2, |word| / 3) edits away.
std::optional<std::string> ClosestMatch(absl::string_view word,
                                        const std::vector<std::string>& candidates);

}  // namespace ocs::common
