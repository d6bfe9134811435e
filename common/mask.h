// A sub-network mask M_t: for every channel group of a model, the sorted indices of the channels
// kept. The engine computes it, the coordinator stores it and compares masks across epochs.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ocs::common {

struct GroupMask {
  int size = 0;           // channels in the dense group
  std::vector<int> kept;  // sorted, unique, in [0, size)
  bool operator==(const GroupMask&) const = default;
};

struct Mask {
  std::vector<GroupMask> groups;  // in the model's group order
  bool operator==(const Mask&) const = default;
};

// A mask where every group keeps all its channels.
Mask DenseMask(const std::vector<int>& group_sizes);

// Checks the invariants above and that every group keeps at least one channel.
absl::Status ValidateMask(const Mask& mask);
// Checks that `mask` has the group count and sizes of the model's groups.
absl::Status CheckMaskFitsModel(const Mask& mask, const std::vector<int>& group_sizes);

// The versioned wire and storage form: "OCSM", format version (1 byte), the group count
// (varint), then per group its size (varint) and a bitset of ceil(size/8) bytes, bit c of byte
// c/8 (least significant first) set when channel c is kept. A ResNet-56 mask is ~300 bytes.
std::string EncodeMask(const Mask& mask);
// Rejects anything that is not exactly such an encoding, naming what is wrong.
absl::StatusOr<Mask> DecodeMask(absl::string_view bytes);

}  // namespace ocs::common
