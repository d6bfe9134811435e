#include "proto/artifact_checksum.h"

#include <zlib.h>

namespace ocs::api {

uint32_t ExtendCrc32(uint32_t crc, absl::string_view data) {
  return static_cast<uint32_t>(
      crc32_z(crc, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

}  // namespace ocs::api
