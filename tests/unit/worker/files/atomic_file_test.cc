// Files written whole or not at all: the destination holds the old bytes or the new ones, a failed
// write leaves no temporary behind, and every failure is a status naming the file.
#include "worker/files/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ocs::worker::files {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/atomic-file-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(AtomicFileTest, WritesTheBytesIntoNewFoldersAndLeavesNoTemporary) {
  const std::string path = dir_ + "/a/b/report.json";
  ASSERT_TRUE(WriteAtomically(path, "{\"ok\": true}\n").ok());
  EXPECT_EQ(Read(path), "{\"ok\": true}\n");
  EXPECT_FALSE(fs::exists(TemporaryPath(path)));
}

// A reader that opened the old file keeps reading the old bytes: the new file replaces it by
// rename, it is not rewritten in place.
TEST_F(AtomicFileTest, ReplacesTheFileInsteadOfRewritingIt) {
  const std::string path = dir_ + "/model.pt";
  ASSERT_TRUE(WriteAtomically(path, "old bytes, longer than the new ones").ok());
  std::ifstream reader(path);
  ASSERT_TRUE(WriteAtomically(path, "new").ok());
  std::string old;
  std::getline(reader, old);
  EXPECT_EQ(old, "old bytes, longer than the new ones");
  EXPECT_EQ(Read(path), "new");
}

TEST_F(AtomicFileTest, AFailedWriterLeavesTheOldFileAndNoTemporary) {
  const std::string path = dir_ + "/model.pt";
  ASSERT_TRUE(WriteAtomically(path, "the good model").ok());
  const absl::Status status = WriteAtomically(path, [](const std::string& temporary) {
    std::ofstream(temporary) << "half a mod";
    return absl::InternalError("the serializer gave up");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Read(path), "the good model");
  EXPECT_FALSE(fs::exists(TemporaryPath(path)));
}

TEST_F(AtomicFileTest, AWriterGetsTheTemporaryPathBesideTheDestination) {
  const std::string path = dir_ + "/out/model.frozen.pt";
  std::string seen;
  ASSERT_TRUE(WriteAtomically(path, [&](const std::string& temporary) {
                seen = temporary;
                std::ofstream(temporary) << "frozen";
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(seen, TemporaryPath(path));
  EXPECT_EQ(Read(path), "frozen");
}

TEST_F(AtomicFileTest, FailuresAreStatusesNamingTheFile) {
  // A folder where the destination should go: the rename fails, the folder is untouched.
  fs::create_directories(dir_ + "/report.json/inside");
  absl::Status status = WriteAtomically(dir_ + "/report.json", "{}");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(dir_ + "/report.json"));
  EXPECT_TRUE(fs::is_directory(dir_ + "/report.json/inside"));
  EXPECT_FALSE(fs::exists(TemporaryPath(dir_ + "/report.json")));

  // A file where its folder should be.
  std::ofstream(dir_ + "/plain") << "x";
  status = WriteAtomically(dir_ + "/plain/model.pt", "bytes");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(dir_ + "/plain/model.pt"));
}

}  // namespace
}  // namespace ocs::worker::files
