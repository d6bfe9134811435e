// Reading whole files, gzip-compressed or not, with errors that name the file.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ocs::worker::train {

// The file's bytes; a name ending in ".gz" is decompressed. At most `max_bytes` (after
// decompression): a larger file is refused rather than exhausting memory.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, size_t max_bytes);

// `base`, or `base`.gz when only that exists; NotFound naming both otherwise.
absl::StatusOr<std::string> FindPlainOrGzip(const std::string& base);

}  // namespace ocs::worker::train
