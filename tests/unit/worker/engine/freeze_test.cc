// Freezing for serving, at the API: shapes LibTorch would throw on come back as statuses.
#include "worker/engine/freeze.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "worker/engine/export.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/network_model.h"

namespace ocs::worker::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FreezeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/freeze-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const NetworkModel model(*BuildModel("resnet20", 10, {1, 8, 8}), 1);
    ASSERT_TRUE(ExportTorchScript(model, dir_ + "/model.pt").ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  absl::StatusOr<FrozenModel> Freeze(std::vector<int64_t> shape) {
    return FreezeForServing(dir_ + "/model.pt", dir_ + "/model.frozen.pt",
                            {.input_shape = std::move(shape)});
  }
  std::string dir_;
};

TEST_F(FreezeTest, FreezesAndWritesTheCopy) {
  auto frozen = Freeze({1, 8, 8});
  ASSERT_TRUE(frozen.ok()) << frozen.status();
  EXPECT_EQ(frozen->batch_norms_after, 0);
  EXPECT_TRUE(fs::is_regular_file(dir_ + "/model.frozen.pt"));
  EXPECT_FALSE(fs::exists(dir_ + "/model.frozen.pt.tmp"));
}

TEST_F(FreezeTest, ASizeBelowOneIsInvalid) {
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{-1, 8, 8}, {1, 0, 8}}) {
    auto frozen = Freeze(shape);
    EXPECT_EQ(frozen.status().code(), absl::StatusCode::kInvalidArgument) << frozen.status();
    EXPECT_THAT(std::string(frozen.status().message()), HasSubstr("has a size below 1"));
  }
  EXPECT_FALSE(fs::exists(dir_ + "/model.frozen.pt"));
}

// 2^51 values: beyond any address space, so the check batch fails to allocate on every machine.
TEST_F(FreezeTest, ACheckBatchTooLargeToAllocateIsResourceExhausted) {
  auto frozen = Freeze({int64_t{1} << 20, int64_t{1} << 20, int64_t{1} << 10});
  EXPECT_EQ(frozen.status().code(), absl::StatusCode::kResourceExhausted) << frozen.status();
  EXPECT_THAT(std::string(frozen.status().message()), HasSubstr("cannot be made"));
  EXPECT_FALSE(fs::exists(dir_ + "/model.frozen.pt"));
}

}  // namespace
}  // namespace ocs::worker::engine
