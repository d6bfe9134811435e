// The checksum an artifact upload carries (ocs.v1 ArtifactChunk.crc32): CRC-32 as zlib computes
// it (IEEE 802.3). The worker computes it over the file, the coordinator over the bytes it
// received; they differ when an upload was cut short or damaged.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace ocs::api {

// The CRC-32 of the bytes so far (`crc`, 0 for none) followed by `data`.
uint32_t ExtendCrc32(uint32_t crc, absl::string_view data);

}  // namespace ocs::api
