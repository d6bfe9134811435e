// `ocs-worker run|launch` as users run them: real processes, real Gloo rendezvous on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/support/gloo.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string WriteJob(const std::string& name, const std::string& data) {
  const std::string path = ::testing::TempDir() + "/" + name + ".yaml";
  std::ofstream(path) << "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: " << name
                      << "}\nspec:\n"
                         "  model: {arch: resnet20, numClasses: 10, inputShape: [1, 28, 28]}\n"
                         "  data: "
                      << data
                      << "\n"
                         "  training: {epochs: 4, batchSize: 32}\n"
                         "  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, "
                         "sparsityEndEpoch: 2}\n"
                         "  resources: {workers: 2, device: cpu}\n"
                         "  checkpoint: {everyEpochs: 1}\n";
  return path;
}

std::string FreshFolder(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  return dir;
}

TEST(WorkerRunTest, LaunchTrainsTwoRanksOnFashionMnistAndExports) {
  OCS_SKIP_WITHOUT_GLOO();
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  const std::string job =
      WriteJob("launch-fmnist", "{dataset: fashion-mnist, trainLimit: 512, testLimit: 256}");
  const std::string out = FreshFolder("launch-fmnist-out");
  const CommandResult result = RunCommand(
      {OCS_WORKER_BIN, "launch", job, "--nproc", "2", "-o", out}, std::chrono::seconds(300));
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("epoch   4/4  pruned"));
  EXPECT_THAT(result.out, HasSubstr("pruned before epoch 3 (index 2)"));
  const auto report = nlohmann::json::parse(ReadFile(out + "/report.json"));
  EXPECT_EQ(report["pruneEpoch"], 2);
  EXPECT_NEAR(report["flopsReduction"].get<double>(), 0.5, 5e-4);
  EXPECT_TRUE(fs::exists(out + "/model.pt"));
}

TEST(WorkerRunTest, StopAndResumeFinishesTheRun) {
  const std::string job =
      WriteJob("resume-synthetic", "{dataset: synthetic, trainLimit: 256, testLimit: 64}");
  const std::string out = FreshFolder("resume-synthetic-out");
  CommandResult first =
      RunCommand({OCS_WORKER_BIN, "run", job, "-o", out, "--stop-after-epoch", "2"},
                 std::chrono::seconds(300));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_FALSE(fs::exists(out + "/model.pt"));
  CommandResult rest =
      RunCommand({OCS_WORKER_BIN, "run", job, "-o", out, "--resume"}, std::chrono::seconds(300));
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_THAT(rest.out + rest.err, HasSubstr("resuming at epoch 3"));
  EXPECT_THAT(rest.out, ::testing::Not(HasSubstr("epoch   1/4")));
  EXPECT_TRUE(fs::exists(out + "/model.pt"));
}

TEST(WorkerRunTest, BadInputExitsTwoWithAClearMessage) {
  const std::string missing =
      WriteJob("missing-data", "{dataset: mnist, path: /nonexistent/mnist}");
  CommandResult result = RunCommand({OCS_WORKER_BIN, "run", missing, "-o", FreshFolder("x")});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("spec.data.path: /nonexistent/mnist is not a folder"));

  const std::string dir = FreshFolder("corrupt-cifar");
  fs::create_directories(dir);
  std::ofstream(dir + "/data_batch_1.bin") << "definitely not cifar";
  const std::string corrupt = WriteJob("corrupt-data", "{dataset: cifar10, path: " + dir + "}");
  std::string text = ReadFile(corrupt);
  text.replace(text.find("[1, 28, 28]"), 11, "[3, 32, 32]");  // CIFAR's shape
  std::ofstream(corrupt) << text;
  result = RunCommand({OCS_WORKER_BIN, "run", corrupt, "-o", FreshFolder("y")});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("data_batch_1.bin: 20 bytes is not a whole number"));

  result = RunCommand({OCS_WORKER_BIN, "run", "/nonexistent/job.yaml"});
  EXPECT_EQ(result.exit_code, 2);
  result = RunCommand({OCS_WORKER_BIN, "run", missing, "--world-size", "2", "--rank", "0",
                       "--master", "not-an-address"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("is not host:port"));
}

}  // namespace
}  // namespace ocs::testing
