#include "common/utf8.h"

#include <gtest/gtest.h>

namespace ocs::common {
namespace {

TEST(Utf8Test, FindsTheFirstByteOutsideAWellFormedSequence) {
  EXPECT_EQ(FirstInvalidUtf8Byte(""), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8Byte("J\xcc\x84 \xe2\x96\x81 \xf0\x9f\x98\x80"), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8Byte("ab\xff"), 2u);
  EXPECT_EQ(FirstInvalidUtf8Byte("a\xc3"), 1u);             // cut sequence
  EXPECT_EQ(FirstInvalidUtf8Byte("a\xc0\xaf"), 1u);         // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8Byte("a\xe0\x80\xaf"), 1u);     // overlong, 3 bytes
  EXPECT_EQ(FirstInvalidUtf8Byte("\xed\xa0\x80"), 0u);      // a surrogate
  EXPECT_EQ(FirstInvalidUtf8Byte("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8Byte("\xe2\x96"
                                 "a"),
            0u);                                  // continuation missing
  EXPECT_EQ(FirstInvalidUtf8Byte("ok\x80"), 2u);  // a lone continuation byte
}

TEST(Utf8Test, ReplacesEachStrayByte) {
  EXPECT_EQ(ReplaceInvalidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(ReplaceInvalidUtf8("escape: \xe1 end"), "escape: ? end");
  EXPECT_EQ(ReplaceInvalidUtf8("\xff\xfe"), "??");
}

TEST(Utf8Test, OneLineIsAShortPrefixWithoutControlCharacters) {
  EXPECT_EQ(OneLine("stopped by\nSIGTERM\x1b[2J\x7f", 100), "stopped by?SIGTERM?[2J?");
  EXPECT_EQ(OneLine("h\xc3\xa9llo", 2), "h");  // not half of the é
  EXPECT_EQ(OneLine("", 10), "");
}

TEST(Utf8Test, PrefixNeverEndsInsideACharacter) {
  const std::string text = "a\xc3\xa9\xe2\x96\x81";  // a é ▁
  EXPECT_EQ(Utf8Prefix(text, 10), text);
  EXPECT_EQ(Utf8Prefix(text, 1), "a");
  EXPECT_EQ(Utf8Prefix(text, 2), "a");
  EXPECT_EQ(Utf8Prefix(text, 3), "a\xc3\xa9");
  EXPECT_EQ(Utf8Prefix(text, 5), "a\xc3\xa9");
  EXPECT_EQ(Utf8Prefix(text, 0), "");
}

}  // namespace
}  // namespace ocs::common
