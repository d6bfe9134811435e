#include "common/suggest.h"

#include <gtest/gtest.h>

namespace ocs::common {
namespace {

TEST(EditDistanceTest, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("abc", ""), 3);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("epochs", "epoch"), 1);
}

TEST(EditDistanceTest, IgnoresCase) { EXPECT_EQ(EditDistance("BatchSize", "batchsize"), 0); }

TEST(ClosestMatchTest, SuggestsPlausibleTypos) {
  const std::vector<std::string> fields = {"targetFlopsReduction", "layerPruneLimit", "roundTo"};
  EXPECT_EQ(ClosestMatch("targetFlopReduction", fields), "targetFlopsReduction");
  EXPECT_EQ(ClosestMatch("roundto", fields), "roundTo");
}

TEST(ClosestMatchTest, SuggestsNothingForUnrelatedWords) {
  EXPECT_EQ(ClosestMatch("banana", {"targetFlopsReduction", "roundTo"}), std::nullopt);
}

}  // namespace
}  // namespace ocs::common
