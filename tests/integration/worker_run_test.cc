// `ocs-worker run|launch` as users run them: real processes, real Gloo rendezvous on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/support/gloo.h"
#include "tests/support/memory_limit.h"
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

// A run without --resume into the folder of an earlier one sets that run aside whole (its
// checkpoints would otherwise mix with the new run's), and a resume from checkpoints that are all
// unreadable fails naming them instead of starting over from epoch 0.
TEST(WorkerRunTest, ARerunSetsTheEarlierRunAsideAndUnreadableCheckpointsFailTheResume) {
  const std::string job =
      WriteJob("rerun-synthetic", "{dataset: synthetic, trainLimit: 128, testLimit: 64}");
  const std::string out = FreshFolder("rerun-synthetic-out");
  const std::vector<std::string> first_epoch = {OCS_WORKER_BIN,       "run", job, "-o", out,
                                                "--stop-after-epoch", "0"};
  const CommandResult earlier = RunCommand(first_epoch, std::chrono::seconds(300));
  ASSERT_EQ(earlier.exit_code, 0) << earlier.err;
  const CommandResult rerun = RunCommand(first_epoch, std::chrono::seconds(300));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_THAT(rerun.out + rerun.err, HasSubstr(out + " held the checkpoints of an earlier run"));
  std::vector<std::string> aside;
  for (const auto& entry : fs::directory_iterator(out)) {
    if (entry.is_directory()) aside.push_back(entry.path().string());
  }
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_THAT(aside[0], HasSubstr("/earlier-run-"));
  EXPECT_TRUE(fs::exists(aside[0] + "/checkpoint-epoch-00001.pt"));
  EXPECT_TRUE(fs::exists(out + "/checkpoint-epoch-00001.pt"));

  std::ofstream(out + "/checkpoint-epoch-00001.pt", std::ios::trunc) << "damaged";
  const CommandResult resume =
      RunCommand({OCS_WORKER_BIN, "run", job, "-o", out, "--resume"}, std::chrono::seconds(300));
  EXPECT_EQ(resume.exit_code, 1) << resume.out;
  EXPECT_THAT(resume.err, HasSubstr("none of the 1 checkpoints in " + out + " can be read"));
  EXPECT_THAT(resume.err, HasSubstr("checkpoint-epoch-00001.pt: unreadable checkpoint"));
  EXPECT_FALSE(fs::exists(out + "/model.pt"));
}

// A standalone rank whose peer dies mid-run stops with the reason and how to go on; it used to
// abort on Gloo's uncaught exception ("terminate called ...", a core dump).
TEST(WorkerRunTest, ARankWhosePeerDiesStopsWithTheReasonInsteadOfAborting) {
  OCS_SKIP_WITHOUT_GLOO();
  std::string text =
      ReadFile(WriteJob("peer-dies", "{dataset: synthetic, trainLimit: 512, testLimit: 64}"));
  text.replace(text.find("epochs: 4"), 9, "epochs: 40");  // far longer than the test waits
  const std::string job = ::testing::TempDir() + "/peer-dies-long.yaml";
  std::ofstream(job) << text;
  const std::string out = FreshFolder("peer-dies-out");
  const std::string master = absl::StrCat("127.0.0.1:", PickFreePort());
  auto rank = [&](int index) {
    return std::make_unique<Subprocess>(
        std::vector<std::string>{OCS_WORKER_BIN, "run", job, "-o", out, "--world-size", "2",
                                 "--rank", std::to_string(index), "--master", master},
        absl::StrCat(out, "-rank", index, ".log"));
  };
  auto rank0 = rank(0);
  auto rank1 = rank(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (!fs::exists(out + "/checkpoint-epoch-00001.pt") && rank0->running() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(out + "/checkpoint-epoch-00001.pt")) << ReadFile(out + "-rank0.log");
  rank1->Signal(SIGKILL);
  EXPECT_EQ(rank0->Wait(std::chrono::seconds(120)), 1) << ReadFile(out + "-rank0.log");
  const std::string log = ReadFile(out + "-rank0.log");
  EXPECT_THAT(log, HasSubstr("error: training stopped: "));
  EXPECT_THAT(log, HasSubstr("--resume continues from the newest checkpoint in " + out));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("terminate called")));
}

// A rank out of memory stops naming the batch size, without the hint to resume: a resume would
// stop at the same place.
TEST(WorkerRunTest, ARankOutOfMemoryStopsNamingTheBatchSize) {
  const std::string job = ::testing::TempDir() + "/out-of-memory.yaml";
  std::ofstream(job) << OutOfMemoryJobYaml(/*max_restarts=*/0);
  const std::string out = FreshFolder("out-of-memory-out");
  const CommandResult result =
      RunCommand(WithMemoryLimit(kWorkerMemoryLimitBytes,
                                 {OCS_WORKER_BIN, "run", job, "-o", out, "--threads", "1"}),
                 std::chrono::seconds(120));
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_THAT(result.err, HasSubstr("error: training stopped: out of memory on device cpu at "
                                    "spec.training.batchSize 64 (a smaller batch needs less): "));
  EXPECT_THAT(result.err, HasSubstr("can't allocate memory"));
  EXPECT_THAT(result.err, ::testing::Not(HasSubstr("--resume")));
  EXPECT_FALSE(fs::exists(out + "/model.pt"));
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
