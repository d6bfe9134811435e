// The artifact folder keeps an upload only when every byte its sender announced arrived: a cut or
// damaged upload leaves no file, not even a temporary one.
#include "server/artifact_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "proto/artifact_checksum.h"

namespace ocs::server {
namespace {

using ::testing::HasSubstr;

class ArtifactFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(::testing::TempDir(), "/artifacts-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  // The files in the job's folder, temporary ones included.
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(root_ + "/job-1")) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }
  static ArtifactFiles::Expected Whole(const std::string& data) {
    return {static_cast<int64_t>(data.size()), api::ExtendCrc32(0, data)};
  }

  std::string root_;
  const std::string model_ = "a model of some bytes";
};

TEST(ArtifactChecksumTest, IsZlibsCrc32AndExtendsAcrossPieces) {
  EXPECT_EQ(api::ExtendCrc32(0, "123456789"), 0xcbf43926u);  // CRC-32's check value
  EXPECT_EQ(api::ExtendCrc32(api::ExtendCrc32(0, "1234"), "56789"), 0xcbf43926u);
  EXPECT_EQ(api::ExtendCrc32(0, ""), 0u);
}

TEST_F(ArtifactFilesTest, AWholeUploadIsStored) {
  ArtifactFiles files(root_);
  auto upload = files.Begin("job-1", "model.pt");
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_TRUE((*upload)->Append(model_.substr(0, 5)).ok());
  ASSERT_TRUE((*upload)->Append(model_.substr(5)).ok());
  auto path = (*upload)->Commit(Whole(model_));
  ASSERT_TRUE(path.ok()) << path.status();
  std::ifstream in(*path, std::ios::binary);
  std::stringstream stored;
  stored << in.rdbuf();
  EXPECT_EQ(stored.str(), model_);
  EXPECT_THAT(Files(), ::testing::ElementsAre("model.pt"));
}

TEST_F(ArtifactFilesTest, AShortUploadIsRefusedAndLeavesNoFile) {
  ArtifactFiles files(root_);
  {
    auto upload = files.Begin("job-1", "model.pt");
    ASSERT_TRUE(upload.ok()) << upload.status();
    ASSERT_TRUE((*upload)->Append(model_.substr(0, 5)).ok());
    auto path = (*upload)->Commit(Whole(model_));
    EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(path.status().message(), HasSubstr("received 5 of 21 bytes"));
  }
  EXPECT_THAT(Files(), ::testing::IsEmpty());
}

TEST_F(ArtifactFilesTest, ADamagedUploadIsRefusedAndLeavesNoFile) {
  ArtifactFiles files(root_);
  {
    auto upload = files.Begin("job-1", "report.json");
    ASSERT_TRUE(upload.ok()) << upload.status();
    std::string damaged = model_;
    damaged[3] ^= 1;
    ASSERT_TRUE((*upload)->Append(damaged).ok());
    auto path = (*upload)->Commit(Whole(model_));
    EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(path.status().message(), HasSubstr("damaged"));
  }
  EXPECT_THAT(Files(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace ocs::server
