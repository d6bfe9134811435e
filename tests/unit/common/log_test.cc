// Log lines name the job, rank and epoch they are about, as text or as one JSON object each.
#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace ocs::common {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(lines_);
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
    SetLogFormat(LogFormat::kText);
    SetLogPattern("[%l] %v");
  }
  void TearDown() override {
    SetLogFormat(LogFormat::kText);
    spdlog::set_default_logger(previous_);
    spdlog::set_pattern("%+");
  }
  std::string TakeLines() {
    std::string text = lines_.str();
    lines_.str("");
    return text;
  }

  std::ostringstream lines_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(LogTest, TextLinesNameTheJobRankAndEpochTheyAreAbout) {
  LogInfo("plain");
  LogWarning("pruned", {"job-x7k2p", 0, 3});
  EXPECT_EQ(TakeLines(), "[info] plain\n[warning] job=job-x7k2p rank=0 epoch=3: pruned\n");
}

TEST_F(LogTest, AThreadsFieldsGoOnEachOfItsLinesAndCallsFillIn) {
  std::string from_thread;
  std::thread rank([&] {
    const ScopedLogFields fields({"job-x7k2p", 1});
    LogInfo("joined");
    SetLogEpoch(4);
    LogError("lost a peer");
    LogInfo("elsewhere", {"other-job"});  // a call's own fields win
  });
  rank.join();
  LogInfo("main thread");  // untouched by the rank's fields
  EXPECT_EQ(TakeLines(),
            "[info] job=job-x7k2p rank=1: joined\n"
            "[error] job=job-x7k2p rank=1 epoch=4: lost a peer\n"
            "[info] job=other-job rank=1 epoch=4: elsewhere\n"
            "[info] main thread\n");
}

TEST_F(LogTest, JsonLinesAreOneObjectEachWithTheFieldsAndAnEscapedMessage) {
  SetLogFormat(LogFormat::kJson);
  LogInfo("quote \" and\nnewline", {"job-x7k2p", 0, 7});
  LogWarning("no job");
  std::istringstream lines(TakeLines());
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  const nlohmann::json first = nlohmann::json::parse(line);
  EXPECT_EQ(first["level"], "info");
  EXPECT_EQ(first["job_id"], "job-x7k2p");
  EXPECT_EQ(first["rank"], 0);
  EXPECT_EQ(first["epoch"], 7);
  EXPECT_EQ(first["msg"], "quote \" and\nnewline");
  EXPECT_TRUE(first.contains("time"));
  ASSERT_TRUE(std::getline(lines, line));
  const nlohmann::json second = nlohmann::json::parse(line);
  EXPECT_EQ(second["level"], "warning");
  EXPECT_FALSE(second.contains("job_id"));
  EXPECT_FALSE(std::getline(lines, line));
}

TEST(LogFormatTest, Names) {
  EXPECT_EQ(LogFormatFromString("json"), LogFormat::kJson);
  EXPECT_EQ(LogFormatFromString("text"), LogFormat::kText);
  EXPECT_EQ(LogFormatFromString("xml"), std::nullopt);
}

}  // namespace
}  // namespace ocs::common
