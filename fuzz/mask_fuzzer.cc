// libFuzzer target: the mask wire format. Any bytes either fail to decode, or decode into a mask
// that encodes back to a mask equal to it, and checking it against a model never crashes.
#include <cstdint>
#include <cstdlib>

#include "common/mask.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto mask = ocs::common::DecodeMask(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!mask.ok()) return 0;
  auto again = ocs::common::DecodeMask(ocs::common::EncodeMask(*mask));
  if (!again.ok() || !(*again == *mask)) std::abort();
  // ResNet-20's channel groups (16 ×7, 32 ×7, 64 ×7 in some order matter not: sizes only).
  static const std::vector<int> kSizes = {16, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32,
                                          32, 32, 32, 64, 64, 64, 64, 64, 64, 64};
  (void)ocs::common::CheckMaskFitsModel(*mask, kSizes);
  return 0;
}
