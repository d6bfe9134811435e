// A real ocs-coordinator process on loopback: it serves ValidateJob with the same problems that
// the local parser reports, and shuts down cleanly on SIGTERM.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/job_spec_yaml.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = absl::StrCat("127.0.0.1:", PickFreePort());
    // Tests run in parallel processes that share TempDir(): one log file each.
    log_path_ = absl::StrCat(::testing::TempDir(), "/coordinator-",
                             ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
                             getpid(), ".log");
    coordinator_ = std::make_unique<Subprocess>(
        std::vector<std::string>{OCS_COORDINATOR_BIN, "--listen", address_}, log_path_);
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    ASSERT_TRUE(
        channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)))
        << ReadFile(log_path_);
    stub_ = ocs::v1::JobService::NewStub(channel_);
  }

  std::string address_, log_path_;
  std::unique_ptr<Subprocess> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ocs::v1::JobService::Stub> stub_;
};

TEST_F(CoordinatorTest, ValidatesLikeTheLocalParser) {
  const std::string yaml =
      "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: x}\nspec:\n  model: {arch: vgg}\n"
      "  data: {dataset: cifar10}\n  stability: {threshold: 2}\n";
  ocs::v1::ValidateJobRequest request;
  request.set_spec_yaml(yaml);
  request.set_source("job.yaml");
  ocs::v1::ValidateJobResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ValidateJob(&context, request, &response).ok());
  EXPECT_FALSE(response.valid());

  std::vector<common::SpecError> local;
  EXPECT_FALSE(common::ParseJobSpec(yaml, "job.yaml", &local).ok());
  ASSERT_EQ(response.errors_size(), static_cast<int>(local.size()));
  for (int i = 0; i < response.errors_size(); ++i) {
    EXPECT_EQ(response.errors(i).field(), local[i].field);
    EXPECT_EQ(response.errors(i).problem(), local[i].problem);
    EXPECT_EQ(response.errors(i).line(), local[i].line);
    EXPECT_EQ(response.errors(i).column(), local[i].column);
  }
}

TEST_F(CoordinatorTest, ReturnsTheCanonicalSpecOfAValidJob) {
  ocs::v1::ValidateJobRequest request;
  request.set_spec_yaml(ReadFile("examples/resnet56-cifar10.yaml"));
  ocs::v1::ValidateJobResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ValidateJob(&context, request, &response).ok());
  EXPECT_TRUE(response.valid());
  EXPECT_EQ(response.job_name(), "resnet56-cifar10");
  auto spec = common::ParseJobSpec(response.canonical_yaml(), "canonical");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model.arch, "resnet56");
}

TEST_F(CoordinatorTest, ExitsCleanlyOnSigterm) {
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0) << ReadFile(log_path_);
  EXPECT_THAT(ReadFile(log_path_), ::testing::HasSubstr("shutting down"));
}

TEST(CoordinatorStartupTest, ReportsAnAddressItCannotBind) {
  const CommandResult result =
      RunCommand({OCS_COORDINATOR_BIN, "--listen", "203.0.113.1:1"}, std::chrono::seconds(20));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.out + result.err, ::testing::HasSubstr("cannot listen on 203.0.113.1:1"));
}

}  // namespace
}  // namespace ocs::testing
