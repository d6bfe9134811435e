// Checkpoints: what is written reads back, a damaged newest checkpoint is skipped for the one
// before it instead of resuming a job from damaged weights, none readable is an error, rotation
// never removes what was just written, and an earlier run's files are set aside whole.
#include "worker/train/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/support/files.h"

namespace ocs::worker::train {
namespace {

namespace fs = std::filesystem;
using ::ocs::testing::SortedFileNames;
using ::testing::HasSubstr;

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

void Damage(const fs::path& file) {
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  stream.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
  stream << "damaged";
}

// A folder still holding an earlier run's later epochs: the checkpoints this run writes are kept
// (they used to be rotated away at once, and a resume then took the earlier run's).
TEST_F(CheckpointTest, TheCheckpointJustWrittenIsNeverRotatedAway) {
  const std::string dir = dir_ + "-later";
  fs::remove_all(dir);
  ASSERT_TRUE(WriteCheckpoint(dir, 8, Make("{\"epoch\":8}")).ok());
  ASSERT_TRUE(WriteCheckpoint(dir, 9, Make("{\"epoch\":9}")).ok());
  ASSERT_TRUE(WriteCheckpoint(dir, 1, Make("{\"epoch\":1}")).ok());
  EXPECT_TRUE(fs::exists(fs::path(dir) / "checkpoint-epoch-00001.pt"));
  ASSERT_TRUE(WriteCheckpoint(dir, 2, Make("{\"epoch\":2}")).ok());
  ASSERT_TRUE(WriteCheckpoint(dir, 3, Make("{\"epoch\":3}")).ok());
  // The newest two of this run, and nothing of a later epoch removed.
  EXPECT_THAT(SortedFileNames(dir),
              ::testing::ElementsAre("checkpoint-epoch-00002.pt", "checkpoint-epoch-00003.pt",
                                     "checkpoint-epoch-00008.pt", "checkpoint-epoch-00009.pt"));
  fs::remove_all(dir);
}

// Epoch 100000 (the largest a job has) is newer than 99999 although its name sorts before it.
TEST_F(CheckpointTest, EpochsCompareAsNumbers) {
  ASSERT_TRUE(WriteCheckpoint(dir_, 99999, Make("{\"epoch\":99999}")).ok());
  ASSERT_TRUE(WriteCheckpoint(dir_, 100000, Make("{\"epoch\":100000}")).ok());
  auto read = ReadLatestCheckpoint(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->meta_json, "{\"epoch\":100000}");
  EXPECT_THAT(SortedFileNames(dir_),
              ::testing::ElementsAre("checkpoint-epoch-100000.pt", "checkpoint-epoch-99999.pt"));
}

TEST_F(CheckpointTest, NoCheckpointAtAllIsNotFound) {
  const std::string empty = dir_ + "-empty";
  fs::create_directories(empty);
  EXPECT_TRUE(absl::IsNotFound(ReadLatestCheckpoint(empty).status()));
  EXPECT_TRUE(absl::IsNotFound(ReadLatestCheckpoint(dir_ + "-missing").status()));
  fs::remove_all(empty);
}

// Starting over from epoch 0 would throw the run away without a word: an error names every file.
TEST_F(CheckpointTest, NoReadableCheckpointIsDataLossNamingEveryFile) {
  Damage(fs::path(dir_) / "checkpoint-epoch-00002.pt");
  std::ofstream(fs::path(dir_) / "checkpoint-epoch-00001.pt", std::ios::trunc) << "not a zip";
  auto read = ReadLatestCheckpoint(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
  EXPECT_THAT(read.status().message(),
              ::testing::AllOf(HasSubstr("none of the 2 checkpoints in " + dir_),
                               HasSubstr("checkpoint-epoch-00002.pt: damaged checkpoint"),
                               HasSubstr("checkpoint-epoch-00001.pt: unreadable checkpoint")));
}

TEST_F(CheckpointTest, AnEarlierRunIsSetAsideWhole) {
  std::ofstream(fs::path(dir_) / "model.pt") << "the earlier run's model";
  std::ofstream(fs::path(dir_) / "report.json") << "{}";
  auto folder = SetAsideEarlierRun(dir_);
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_THAT(*folder, ::testing::StartsWith(dir_ + "/earlier-run-"));
  EXPECT_THAT(SortedFileNames(*folder),
              ::testing::ElementsAre("checkpoint-epoch-00001.pt", "checkpoint-epoch-00002.pt",
                                     "model.pt", "report.json"));
  EXPECT_THAT(SortedFileNames(dir_), ::testing::ElementsAre(fs::path(*folder).filename().string()));
  EXPECT_TRUE(absl::IsNotFound(ReadLatestCheckpoint(dir_).status()));
  // Nothing left to set aside; a second earlier run in the same second gets its own folder.
  EXPECT_EQ(*SetAsideEarlierRun(dir_), "");
  ASSERT_TRUE(WriteCheckpoint(dir_, 3, Make("{\"epoch\":3}")).ok());
  auto second = SetAsideEarlierRun(dir_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*second, *folder);
  EXPECT_THAT(SortedFileNames(*second), ::testing::ElementsAre("checkpoint-epoch-00003.pt"));
}

}  // namespace
}  // namespace ocs::worker::train
