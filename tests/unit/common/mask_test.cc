#include "common/mask.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace ocs::common {
namespace {

using ::testing::HasSubstr;

Mask RandomMask(unsigned seed) {
  std::mt19937 random(seed);
  Mask mask;
  for (int size : {1, 7, 8, 9, 16, 64, 100, 2048}) {
    GroupMask group{size, {}};
    for (int c = 0; c < size; ++c) {
      if (random() % 3 != 0) group.kept.push_back(c);
    }
    if (group.kept.empty()) group.kept.push_back(size - 1);
    mask.groups.push_back(group);
  }
  return mask;
}

TEST(MaskEncodingTest, RoundTripsExactly) {
  for (unsigned seed = 0; seed < 20; ++seed) {
    const Mask mask = RandomMask(seed);
    auto decoded = DecodeMask(EncodeMask(mask));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, mask);
  }
  EXPECT_EQ(*DecodeMask(EncodeMask(Mask{})), Mask{});
}

TEST(MaskEncodingTest, IsCompact) {
  // A header, a count, then one size varint and ceil(size/8) bytes per group.
  const Mask mask = DenseMask({16, 16, 64});
  EXPECT_EQ(EncodeMask(mask).size(), 4u + 1 + 1 + (1 + 2) + (1 + 2) + (1 + 8));
}

TEST(MaskEncodingTest, RejectsCorruptBytes) {
  const std::string good = EncodeMask(DenseMask({12, 5}));
  EXPECT_THAT(DecodeMask("").status().message(), HasSubstr("missing \"OCSM\" header"));
  EXPECT_THAT(DecodeMask("XXXX\x01").status().message(), HasSubstr("header"));
  std::string wrong_version = good;
  wrong_version[4] = 9;
  EXPECT_THAT(DecodeMask(wrong_version).status().message(), HasSubstr("format version 9"));
  EXPECT_THAT(DecodeMask(good.substr(0, good.size() - 1)).status().message(),
              HasSubstr("truncated"));
  EXPECT_THAT(DecodeMask(good + "x").status().message(), HasSubstr("trailing bytes"));
  std::string past_size = good;
  past_size.back() = static_cast<char>(0xff);  // group of 5 channels with bits 5..7 set
  EXPECT_THAT(DecodeMask(past_size).status().message(), HasSubstr("bits set past its size"));
  std::string empty_group = EncodeMask(Mask{{GroupMask{3, {0}}}});
  empty_group.back() = 0;
  EXPECT_THAT(DecodeMask(empty_group).status().message(), HasSubstr("keeps no channel"));
  const std::string huge = std::string("OCSM\x01\x01", 6) + "\xff\xff\xff\xff\x0f";
  EXPECT_THAT(DecodeMask(huge).status().message(), HasSubstr("bad size"));
}

TEST(MaskEncodingTest, DecodesRandomBytesWithoutCrashing) {
  std::mt19937 random(11);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes = EncodeMask(RandomMask(i));
    for (int flips = 0; flips < 3; ++flips) bytes[random() % bytes.size()] = random();
    auto decoded = DecodeMask(bytes);
    if (decoded.ok()) {
      EXPECT_TRUE(ValidateMask(*decoded).ok());
    }
  }
}

TEST(MaskTest, ValidationNamesTheProblem) {
  EXPECT_THAT(ValidateMask({{GroupMask{4, {0, 4}}}}).message(),
              HasSubstr("channel 4 is out of range"));
  EXPECT_THAT(ValidateMask({{GroupMask{4, {2, 1}}}}).message(), HasSubstr("sorted and unique"));
  EXPECT_THAT(ValidateMask({{GroupMask{4, {1, 1}}}}).message(), HasSubstr("sorted and unique"));
  EXPECT_THAT(CheckMaskFitsModel(DenseMask({4, 8}), {4}).message(), HasSubstr("2 groups"));
  EXPECT_THAT(CheckMaskFitsModel(DenseMask({4, 8}), {4, 9}).message(),
              HasSubstr("mask group 1 has 8 channels, the model's has 9"));
  EXPECT_TRUE(CheckMaskFitsModel(DenseMask({4, 8}), {4, 8}).ok());
}

}  // namespace
}  // namespace ocs::common
