#include "common/mask.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ocs::common {
namespace {

constexpr char kMagic[] = "OCSM";
constexpr uint8_t kFormatVersion = 1;
// A group larger than any real layer is a corrupt size, not a reason to allocate gigabytes.
constexpr uint64_t kMaxGroupSize = 1 << 20;
constexpr uint64_t kMaxGroups = 1 << 20;

void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads a varint at *pos; false when truncated or longer than 10 bytes.
bool GetVarint(absl::string_view bytes, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *pos < bytes.size(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(bytes[(*pos)++]);
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

}  // namespace

Mask DenseMask(const std::vector<int>& group_sizes) {
  Mask mask;
  for (int size : group_sizes) {
    GroupMask group{size, std::vector<int>(size)};
    for (int c = 0; c < size; ++c) group.kept[c] = c;
    mask.groups.push_back(std::move(group));
  }
  return mask;
}

absl::Status ValidateMask(const Mask& mask) {
  for (size_t g = 0; g < mask.groups.size(); ++g) {
    const GroupMask& group = mask.groups[g];
    if (group.size < 1)
      return absl::InvalidArgumentError(absl::StrCat("mask group ", g, ": empty"));
    if (group.kept.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("mask group ", g, ": keeps no channel"));
    }
    for (size_t i = 0; i < group.kept.size(); ++i) {
      const int c = group.kept[i];
      if (c < 0 || c >= group.size) {
        return absl::InvalidArgumentError(absl::StrCat("mask group ", g, ": channel ", c,
                                                       " is out of range [0, ", group.size, ")"));
      }
      if (i > 0 && c <= group.kept[i - 1]) {
        return absl::InvalidArgumentError(
            absl::StrCat("mask group ", g, ": kept channels must be sorted and unique"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMaskFitsModel(const Mask& mask, const std::vector<int>& group_sizes) {
  if (mask.groups.size() != group_sizes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("mask has ", mask.groups.size(),
                                                   " groups, the model has ", group_sizes.size()));
  }
  for (size_t g = 0; g < group_sizes.size(); ++g) {
    if (mask.groups[g].size != group_sizes[g]) {
      return absl::InvalidArgumentError(absl::StrCat("mask group ", g, " has ", mask.groups[g].size,
                                                     " channels, the model's "
                                                     "has ",
                                                     group_sizes[g]));
    }
  }
  return ValidateMask(mask);
}

std::string EncodeMask(const Mask& mask) {
  std::string out(kMagic);
  out.push_back(static_cast<char>(kFormatVersion));
  PutVarint(mask.groups.size(), &out);
  for (const GroupMask& group : mask.groups) {
    PutVarint(group.size, &out);
    std::string bits((group.size + 7) / 8, '\0');
    for (int c : group.kept) bits[c / 8] = static_cast<char>(bits[c / 8] | (1 << (c % 8)));
    out += bits;
  }
  return out;
}

absl::StatusOr<Mask> DecodeMask(absl::string_view bytes) {
  auto corrupt = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("mask encoding: ", what));
  };
  if (bytes.size() < 5 || bytes.substr(0, 4) != kMagic) return corrupt("missing \"OCSM\" header");
  if (static_cast<uint8_t>(bytes[4]) != kFormatVersion) {
    return corrupt(absl::StrCat("unsupported format version ", static_cast<int>(bytes[4])));
  }
  size_t pos = 5;
  uint64_t group_count = 0;
  if (!GetVarint(bytes, &pos, &group_count) || group_count > kMaxGroups) {
    return corrupt("bad group count");
  }
  Mask mask;
  for (uint64_t g = 0; g < group_count; ++g) {
    uint64_t size = 0;
    if (!GetVarint(bytes, &pos, &size) || size < 1 || size > kMaxGroupSize) {
      return corrupt(absl::StrCat("group ", g, ": bad size"));
    }
    const size_t length = (size + 7) / 8;
    if (bytes.size() - pos < length) return corrupt(absl::StrCat("group ", g, ": truncated"));
    GroupMask group{static_cast<int>(size), {}};
    for (uint64_t c = 0; c < length * 8; ++c) {
      if (!(static_cast<uint8_t>(bytes[pos + c / 8]) & (1 << (c % 8)))) continue;
      if (c >= size) return corrupt(absl::StrCat("group ", g, ": bits set past its size"));
      group.kept.push_back(static_cast<int>(c));
    }
    pos += length;
    mask.groups.push_back(std::move(group));
  }
  if (pos != bytes.size()) return corrupt("trailing bytes");
  if (absl::Status status = ValidateMask(mask); !status.ok()) return status;
  return mask;
}

}  // namespace ocs::common
