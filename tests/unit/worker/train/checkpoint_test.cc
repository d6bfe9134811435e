// Checkpoints: what is written reads back, and a damaged newest checkpoint is skipped for the
// one before it instead of resuming a job from damaged weights.
#include "worker/train/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace ocs::worker::train {
namespace {

namespace fs = std::filesystem;

Checkpoint Make(const std::string& meta) {
  torch::manual_seed(7);
  return {meta, {{"param/weight", torch::randn({512, 512})}, {"buffer/mean", torch::ones({8})}}};
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/checkpoints-", getpid());
    fs::remove_all(dir_);
    ASSERT_TRUE(WriteCheckpoint(dir_, 1, Make("{\"epoch\":1}")).ok());
    ASSERT_TRUE(WriteCheckpoint(dir_, 2, Make("{\"epoch\":2}")).ok());
  }
  std::string dir_;
};

TEST_F(CheckpointTest, TheNewestReadsBackAsWritten) {
  std::vector<std::string> skipped;
  auto read = ReadLatestCheckpoint(dir_, &skipped);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(skipped.empty());
  EXPECT_EQ(read->meta_json, "{\"epoch\":2}");
  EXPECT_TRUE(torch::equal(read->tensors.at("param/weight"), Make("").tensors.at("param/weight")));
}

TEST_F(CheckpointTest, BytesChangedInsideATensorSkipToThePreviousCheckpoint) {
  const fs::path newest = fs::path(dir_) / "checkpoint-epoch-00002.pt";
  {
    // The middle of the file is the 1 MiB weight tensor's data: LibTorch reads it back silently.
    std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(newest) / 2));
    file << "damaged";
  }
  std::vector<std::string> skipped;
  auto read = ReadLatestCheckpoint(dir_, &skipped);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->meta_json, "{\"epoch\":1}");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_THAT(skipped[0], ::testing::HasSubstr("checkpoint-epoch-00002.pt: damaged checkpoint"));
}

// A crash between writing and renaming leaves a temporary file: never read, cleared by the next
// write.
TEST_F(CheckpointTest, AnUnfinishedWriteIsIgnoredThenClearedAway) {
  const fs::path unfinished = fs::path(dir_) / "checkpoint-epoch-00003.pt.tmp";
  std::ofstream(unfinished) << "half a checkpoint";
  std::vector<std::string> skipped;
  auto read = ReadLatestCheckpoint(dir_, &skipped);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->meta_json, "{\"epoch\":2}");
  EXPECT_TRUE(skipped.empty());
  ASSERT_TRUE(WriteCheckpoint(dir_, 4, Make("{\"epoch\":4}")).ok());
  EXPECT_FALSE(fs::exists(unfinished));
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "checkpoint-epoch-00004.pt"));
}

}  // namespace
}  // namespace ocs::worker::train
