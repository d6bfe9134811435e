// Every ocsctl verb against a real coordinator and a real worker on loopback: one small job runs
// to its end, then each read verb is checked in its table and JSON forms (the JSON field names
// are the ocs.v1 API's), with the exit codes `ocsctl --help` documents.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/support/gloo.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kJob[] = R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: verbs, labels: {team: vision, build: "007", canary: "true"}}
spec:
  model: {arch: resnet20, numClasses: 4, inputShape: [3, 12, 12]}
  data: {dataset: synthetic, trainLimit: 256, testLimit: 64}
  training: {epochs: 4, batchSize: 32}
  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: 2}
  resources: {workers: 2, device: cpu}
  checkpoint: {everyEpochs: 0}
)";

// One coordinator, one worker with two slots, and one job that ran to its end: shared by the
// tests of this suite (a job takes seconds; the verbs only read).
class OcsctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = absl::StrCat(::testing::TempDir(), "/ocsctl-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    address_ = absl::StrCat("127.0.0.1:", PickFreePort());
    coordinator_ = new Subprocess(
        {OCS_COORDINATOR_BIN, "--listen", address_, "--data-dir", dir_ + "/coordinator",
         "--rendezvous-port-base", std::to_string(PickFreePort()), "--metrics-listen", kAnyPort},
        dir_ + "/coordinator.log");
    worker_ = new Subprocess(
        {OCS_WORKER_BIN, "serve", "--coordinator", address_, "--slots", "2", "--threads", "1",
         "--work-dir", dir_ + "/work", "--metrics-listen", kAnyPort},
        dir_ + "/worker.log");
    std::ofstream(dir_ + "/job.yaml") << kJob;
    if (!OCS_HAS_GLOO) return;
    submitted_ = RunCommand(
        {OCSCTL_BIN, "submit", dir_ + "/job.yaml", "--coordinator", address_, "--follow"},
        std::chrono::seconds(240));
    job_ = submitted_.out.substr(0, submitted_.out.find('\n'));
  }
  static void TearDownTestSuite() {
    delete worker_;
    delete coordinator_;
  }
  void SetUp() override { OCS_SKIP_WITHOUT_GLOO(); }

  static CommandResult Ocsctl(std::vector<std::string> args) {
    args.insert(args.begin(), OCSCTL_BIN);
    args.insert(args.end(), {"--coordinator", address_});
    return RunCommand(args);
  }
  static nlohmann::json Json(const CommandResult& result) {
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  }

  static std::string dir_, address_, job_;
  static Subprocess* coordinator_;
  static Subprocess* worker_;
  static CommandResult submitted_;
};

std::string OcsctlTest::dir_, OcsctlTest::address_, OcsctlTest::job_;
Subprocess* OcsctlTest::coordinator_ = nullptr;
Subprocess* OcsctlTest::worker_ = nullptr;
CommandResult OcsctlTest::submitted_;

TEST_F(OcsctlTest, SubmitFollowStreamsEveryEpochAndExitsZero) {
  ASSERT_EQ(submitted_.exit_code, 0) << submitted_.err << ReadFile(dir_ + "/coordinator.log");
  EXPECT_THAT(job_, ::testing::MatchesRegex("verbs-[a-z0-9]{5}"));
  EXPECT_THAT(submitted_.out, HasSubstr(job_ + ": scheduled"));
  EXPECT_THAT(submitted_.out, HasSubstr(job_ + ": pruned (at the boundary before epoch"));
  EXPECT_THAT(submitted_.out, HasSubstr("epoch 3/4  "));
  EXPECT_THAT(submitted_.out, HasSubstr("-> pruned"));
  EXPECT_THAT(submitted_.out, ::testing::EndsWith(job_ + ": succeeded\n"));
}

TEST_F(OcsctlTest, ListShowsTheJobAsATableAndAsJson) {
  const CommandResult table = Ocsctl({"list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("ID"));
  EXPECT_THAT(table.out, ::testing::ContainsRegex(job_ + " +succeeded +pruned +4/4"));
  const nlohmann::json json =
      Json(Ocsctl({"list", "-o", "json", "--state", "succeeded", "-l", "team=vision"}));
  ASSERT_EQ(json["jobs"].size(), 1u);
  EXPECT_EQ(json["jobs"][0]["id"], job_);
  EXPECT_EQ(json["jobs"][0]["state"], "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(json["jobs"][0]["labels"]["team"], "vision");
  EXPECT_TRUE(Json(Ocsctl({"list", "-o", "json", "--state", "failed"}))["jobs"].empty());
  EXPECT_EQ(Ocsctl({"list", "-l", "novalue"}).exit_code, 2);
}

TEST_F(OcsctlTest, DescribeShowsHistoryPruneArtifactsAndSpec) {
  const CommandResult text = Ocsctl({"describe", job_});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* part : {"State:     succeeded", "History:", "phase pruned",
                           "Pruned:    at the boundary before epoch", "model.pt", "report.json",
                           "Spec:", "arch: resnet20"}) {
    EXPECT_THAT(text.out, HasSubstr(part));
  }
  const nlohmann::json json = Json(Ocsctl({"describe", job_, "-o", "json"}));
  EXPECT_EQ(json["history"].size(), 5u);  // pending, scheduled, sparsity learning, pruned, done
  EXPECT_EQ(json["artifacts"][0]["name"], "model.pt");
  const CommandResult yaml = Ocsctl({"describe", job_, "-o", "yaml"});
  EXPECT_THAT(yaml.out, HasSubstr("id: " + job_));
  // Block style, and strings that a YAML reader would take for a number or a boolean keep their
  // quotes.
  EXPECT_THAT(yaml.out, HasSubstr("\n  team: vision\n"));
  EXPECT_THAT(yaml.out, HasSubstr("\n  build: \"007\"\n"));
  EXPECT_THAT(yaml.out, HasSubstr("\n  canary: \"true\"\n"));
}

TEST_F(OcsctlTest, StabilityAndMasksReadTheStoredSeries) {
  const nlohmann::json stability = Json(Ocsctl({"stability", job_, "-o", "json"}));
  ASSERT_EQ(stability["boundaries"].size(), 4u);
  for (const char* field : {"epoch", "phase", "prune", "lambda", "hasStability", "j", "jBar",
                            "trainLoss", "testAccuracy", "flops", "hasMask"}) {
    EXPECT_TRUE(stability["boundaries"][1].contains(field)) << field;
  }
  const CommandResult table = Ocsctl({"stability", job_});
  EXPECT_THAT(table.out, HasSubstr("VERDICT"));
  EXPECT_THAT(table.out, HasSubstr("J̄ "));  // the sparkline

  const nlohmann::json one = Json(Ocsctl({"masks", job_, "--epoch", "1", "-o", "json"}));
  ASSERT_EQ(one["masks"].size(), 1u);
  EXPECT_EQ(one["masks"][0]["epoch"], 1);
  EXPECT_EQ(one["masks"][0]["keptPerGroup"].size(), one["masks"][0]["groupSizes"].size());
  const nlohmann::json diff = Json(Ocsctl({"masks", job_, "--diff", "0", "1", "-o", "json"}));
  EXPECT_EQ(diff["fromEpoch"], 0);
  EXPECT_EQ(diff["groups"].size(), one["masks"][0]["groupSizes"].size());
  EXPECT_THAT(Ocsctl({"masks", job_, "--diff", "0", "1"}).out, HasSubstr("groups changed"));
  const CommandResult missing = Ocsctl({"masks", job_, "--epoch", "99"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no mask for epoch 99"));
}

TEST_F(OcsctlTest, DownloadWritesTheCoordinatorsArtifacts) {
  const std::string out = dir_ + "/downloaded";
  const CommandResult result = Ocsctl({"download", job_, "-o", out});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const char* name : {"model.pt", "report.json"}) {
    EXPECT_EQ(ReadFile(out + "/" + name),
              ReadFile(dir_ + "/coordinator/artifacts/" + job_ + "/" + name));
    EXPECT_FALSE(fs::exists(out + "/" + name + ".part"));
  }
  EXPECT_GT(fs::file_size(out + "/model.pt"), 1000u);

  // A place that cannot take the file is an error, not a success message.
  const std::string blocked = dir_ + "/blocked";
  fs::create_directories(blocked + "/model.pt/inside");
  const CommandResult refused = Ocsctl({"download", job_, "-o", blocked});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("error: cannot write " + blocked + "/model.pt"));
  EXPECT_FALSE(fs::exists(blocked + "/model.pt.part"));
}

TEST_F(OcsctlTest, WorkersWatchAndCancel) {
  const nlohmann::json workers = Json(Ocsctl({"workers", "-o", "json"}));
  ASSERT_EQ(workers["workers"].size(), 1u);
  EXPECT_EQ(workers["workers"][0]["slots"], 2);
  EXPECT_EQ(workers["workers"][0]["alive"], true);
  const CommandResult watch = Ocsctl({"watch", job_});  // a finished job: its story, then 0
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_THAT(watch.out, HasSubstr("epoch 2/4"));
  const CommandResult cancel = Ocsctl({"cancel", job_});
  EXPECT_EQ(cancel.exit_code, 1);
  EXPECT_THAT(cancel.err, ::testing::MatchesRegex("error: .*\n"));  // one line
}

TEST_F(OcsctlTest, WatchStreamsProgressWithinEachEpochAsJsonLines) {
  // 1,024 images per rank in batches of 16: 64 steps an epoch, progress shows between boundaries.
  std::string longer = kJob;
  longer.replace(longer.find("trainLimit: 256"), 15, "trainLimit: 2048");
  longer.replace(longer.find("name: verbs"), 11, "name: longer");
  std::ofstream(dir_ + "/longer.yaml") << longer;
  const CommandResult submitted = Ocsctl({"submit", dir_ + "/longer.yaml"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  const CommandResult watch =
      RunCommand({OCSCTL_BIN, "watch", id, "-o", "json", "--coordinator", address_},
                 std::chrono::seconds(240));
  ASSERT_EQ(watch.exit_code, 0) << watch.err;
  int progress = 0, boundaries = 0;
  std::istringstream lines(watch.out);
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json event = nlohmann::json::parse(line);  // one event per line
    if (event.contains("boundary")) ++boundaries;
    if (!event.contains("progress")) continue;
    ++progress;
    EXPECT_EQ(event["progress"]["steps"], "64");  // int64 fields are strings in proto JSON
    EXPECT_GE(std::stoi(event["progress"]["step"].get<std::string>()), 1);
  }
  EXPECT_EQ(boundaries, 4);
  EXPECT_GE(progress, 1);
}

TEST_F(OcsctlTest, ErrorsAreOneLineWithDocumentedExitCodes) {
  const CommandResult unknown = Ocsctl({"describe", "nope-12345"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, ::testing::MatchesRegex("error: no job \"nope-12345\"\n"));
  EXPECT_EQ(Ocsctl({"masks"}).exit_code, 2);  // the job is missing
  EXPECT_EQ(Ocsctl({"list", "-o", "xml"}).exit_code, 2);
  EXPECT_EQ(Ocsctl({"masks", job_, "--epoch", "1", "--diff", "0", "2"}).exit_code, 2);
  EXPECT_THAT(RunCommand({OCSCTL_BIN, "--help"}).out, HasSubstr("Exit codes: 0 success"));
}

TEST_F(OcsctlTest, TheConfigFileNamesTheCoordinator) {
  const std::string home = dir_ + "/home";
  fs::create_directories(home + "/.config/ocs");
  std::ofstream(home + "/.config/ocs/config.yaml") << "coordinator: " << address_ << "\n";
  const CommandResult result =
      RunCommand({"/usr/bin/env", "-u", "OCS_COORDINATOR", "-u", "XDG_CONFIG_HOME", "HOME=" + home,
                  OCSCTL_BIN, "workers", "-o", "json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("\"workers\""));

  // An empty key is unset: the address comes from the flag, not from the text "null".
  std::ofstream(home + "/.config/ocs/config.yaml")
      << "coordinator: " << address_ << "\ncaCert:\ntokenFile: ~\n";
  const CommandResult empty_keys = RunCommand(
      {"/usr/bin/env", "-u", "OCS_CA_CERT", "-u", "OCS_TOKEN_FILE", "-u", "XDG_CONFIG_HOME",
       "HOME=" + home, OCSCTL_BIN, "workers", "--coordinator", address_});
  EXPECT_EQ(empty_keys.exit_code, 0) << empty_keys.err;

  // A misspelt setting is named with the one meant; the others still apply.
  auto workers = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {
        "/usr/bin/env",   "-u", "OCS_COORDINATOR", "-u",           "OCS_CA_CERT", "-u",
        "OCS_TOKEN_FILE", "-u", "XDG_CONFIG_HOME", "HOME=" + home, OCSCTL_BIN,    "workers"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunCommand(argv);
  };
  std::ofstream(home + "/.config/ocs/config.yaml")
      << "coordinater: nowhere:1\ncoordinator: " << address_ << "\n";
  const CommandResult typo = workers({});
  EXPECT_EQ(typo.exit_code, 0) << typo.err;
  EXPECT_THAT(typo.err, HasSubstr("warning: ignoring \"coordinater\" in " + home +
                                  "/.config/ocs/config.yaml: not a setting (did you mean "
                                  "\"coordinator\"?)"));

  // A broken file is named once (it was once for every setting looked up), and ignored.
  std::ofstream(home + "/.config/ocs/config.yaml") << "coordinator: [a, b\n";
  const CommandResult broken = workers({"--coordinator", address_});
  EXPECT_EQ(broken.exit_code, 0) << broken.err;
  EXPECT_THAT(broken.err, ::testing::MatchesRegex("warning: ignoring [^\n]*config.yaml: "
                                                  "[^\n]*end of sequence flow not found\n"));
}

}  // namespace
}  // namespace ocs::testing
