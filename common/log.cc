#include "common/log.h"

#include <spdlog/spdlog.h>

#include <atomic>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace ocs::common {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
thread_local LogFields t_fields;

LogFields Merge(const LogFields& given) {
  LogFields fields = t_fields;
  if (!given.job_id.empty()) fields.job_id = given.job_id;
  if (given.rank >= 0) fields.rank = given.rank;
  if (given.epoch >= 0) fields.epoch = given.epoch;
  return fields;
}

// The part of the line spdlog's pattern puts at %v.
std::string Body(absl::string_view message, const LogFields& fields) {
  if (g_format == LogFormat::kJson) {
    // The pattern opened the object with time and level; the rest is ours.
    nlohmann::ordered_json rest;
    if (!fields.job_id.empty()) rest["job_id"] = fields.job_id;
    if (fields.rank >= 0) rest["rank"] = fields.rank;
    if (fields.epoch >= 0) rest["epoch"] = fields.epoch;
    rest["msg"] = std::string(message);
    const std::string object = rest.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return object.substr(1, object.size() - 2);  // without its braces: the pattern has them
  }
  std::string prefix;
  if (!fields.job_id.empty()) absl::StrAppend(&prefix, "job=", fields.job_id, " ");
  if (fields.rank >= 0) absl::StrAppend(&prefix, "rank=", fields.rank, " ");
  if (fields.epoch >= 0) absl::StrAppend(&prefix, "epoch=", fields.epoch, " ");
  if (prefix.empty()) return std::string(message);
  prefix.back() = ':';
  return absl::StrCat(prefix, " ", message);
}

void Log(spdlog::level::level_enum level, absl::string_view message, const LogFields& fields) {
  spdlog::log(level, "{}", Body(message, Merge(fields)));
}

}  // namespace

void LogInfo(absl::string_view message, const LogFields& fields) {
  Log(spdlog::level::info, message, fields);
}
void LogWarning(absl::string_view message, const LogFields& fields) {
  Log(spdlog::level::warn, message, fields);
}
void LogError(absl::string_view message, const LogFields& fields) {
  Log(spdlog::level::err, message, fields);
}

ScopedLogFields::ScopedLogFields(LogFields fields) : previous_(t_fields) {
  t_fields = std::move(fields);
}
ScopedLogFields::~ScopedLogFields() { t_fields = previous_; }

void SetLogEpoch(int epoch) { t_fields.epoch = epoch; }

std::optional<LogFormat> LogFormatFromString(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

void SetLogFormat(LogFormat format) {
  g_format = format;
  if (format == LogFormat::kJson) {
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%v})");
  }
}

void SetLogPattern(const std::string& pattern) {
  if (g_format == LogFormat::kText) spdlog::set_pattern(pattern);
}

}  // namespace ocs::common
