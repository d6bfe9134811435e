// The project's logging (spdlog underneath). Every line about a job names the job, and the rank
// and epoch where they are known; lines are text or, with --log-format json, one JSON object
// each for log collectors:
//   [2026-11-27 21:30:00.123] [info] job=resnet-x7k2p rank=0 epoch=3: pruned to 15.5 M FLOPs
//   {"time":"2026-11-27T21:30:00.123+00:00","level":"info","job_id":"resnet-x7k2p","rank":0,
//    "epoch":3,"msg":"pruned to 15.5 M FLOPs"}
// Translation units that include LibTorch log only through this header: PyTorch 2.x ships its own
// {fmt}, which shadows the one Debian's spdlog was built against. Callers format the message
// themselves (absl::StrFormat, absl::StrCat).
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace ocs::common {

struct LogFields {
  std::string job_id;  // empty: not about one job
  int rank = -1;       // -1: not about one rank
  int epoch = -1;      // -1: not about one epoch
};

// Fields given to a call win over the thread's (ScopedLogFields, SetLogEpoch), field by field.
void LogInfo(absl::string_view message, const LogFields& fields = {});
void LogWarning(absl::string_view message, const LogFields& fields = {});
void LogError(absl::string_view message, const LogFields& fields = {});

// While alive, every line logged from this thread carries `fields` (a rank's thread sets its
// job and rank once; the trainer adds the epoch).
class ScopedLogFields {
 public:
  explicit ScopedLogFields(LogFields fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  LogFields previous_;
};
// This thread's lines name `epoch` from now on (-1: none).
void SetLogEpoch(int epoch);

enum class LogFormat { kText, kJson };
inline constexpr char kLogFormatHelp[] = "Log lines as text or json (one object per line)";
std::optional<LogFormat> LogFormatFromString(absl::string_view name);
// For the whole process; lines logged by gRPC or LibTorch themselves are not affected.
void SetLogFormat(LogFormat format);
// spdlog's pattern syntax for text lines, e.g. "[%H:%M:%S] [%l] %v".
void SetLogPattern(const std::string& pattern);

}  // namespace ocs::common
