// UTF-8 checks for text that ends up in protobuf `string` fields, which must be valid UTF-8: a
// job spec travels as one, and so does every error message quoting it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace ocs::common {

// The offset of the first byte that does not belong to a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are not well formed); nullopt when all are.
std::optional<size_t> FirstInvalidUtf8Byte(absl::string_view text);

// `text` with every byte outside a well-formed sequence replaced by '?': for messages that
// quote text from elsewhere (yaml-cpp quotes a single byte of a multi-byte character).
std::string ReplaceInvalidUtf8(absl::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a
// multi-byte character.
absl::string_view Utf8Prefix(absl::string_view text, size_t max_bytes);

// Text from elsewhere made fit for one line of a message or a log: Utf8Prefix(text, max_bytes)
// with every control character (a newline, an escape) as '?'.
std::string OneLine(absl::string_view text, size_t max_bytes);

}  // namespace ocs::common
