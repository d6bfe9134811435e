#include "client/output.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <regex>

#include <CLI/CLI.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "ocs/v1/job_service.pb.h"

namespace ocs::client {

CLI::Option* AddOutputOption(CLI::App* command, std::string* output) {
  return command->add_option("-o,--output", *output, "table (default), json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
}

OutputFormat ParseOutputFormat(const std::string& output) {
  if (output == "json") return OutputFormat::kJson;
  if (output == "yaml") return OutputFormat::kYaml;
  return OutputFormat::kTable;
}

void PrintMessage(const google::protobuf::Message& message, OutputFormat format) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;  // a script sees every field, zero or not
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  PrintJson(json, format);
}

namespace {

// Whether a YAML reader would take `text`, written plain, for something other than a string: a
// number, a boolean or null, in YAML 1.1's wider sense too (yes/no/on/off, 0o17, 1_000).
bool LooksTyped(const std::string& text) {
  if (text.empty()) return true;
  const YAML::Node plain(text);
  bool flag = false;
  double number = 0;
  if (YAML::convert<bool>::decode(plain, flag) || YAML::convert<double>::decode(plain, number)) {
    return true;
  }
  static const std::regex kTyped("~|null|Null|NULL|[-+.]?[0-9].*");
  return std::regex_match(text, kTyped);
}

// `node` (parsed from JSON) in block style. The emitter keeps neither the flow style nor the
// quotes of the JSON text, so a JSON string such as "true" or "007" is quoted again here.
void EmitBlock(const YAML::Node& node, YAML::Emitter& out) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      out << YAML::BeginMap;
      for (const auto& entry : node) {
        out << YAML::Key;
        EmitBlock(entry.first, out);
        out << YAML::Value;
        EmitBlock(entry.second, out);
      }
      out << YAML::EndMap;
      break;
    case YAML::NodeType::Sequence:
      out << YAML::BeginSeq;
      for (const auto& item : node) EmitBlock(item, out);
      out << YAML::EndSeq;
      break;
    case YAML::NodeType::Scalar:
      // The non-specific tag "!" marks a quoted scalar: a JSON string.
      if (node.Tag() == "!" && LooksTyped(node.Scalar())) out << YAML::DoubleQuoted;
      out << node.Scalar();
      break;
    default:
      out << YAML::Null;
  }
}

}  // namespace

void PrintJson(const std::string& json, OutputFormat format) {
  if (format != OutputFormat::kYaml) {
    std::cout << json << (json.empty() || json.back() != '\n' ? "\n" : "");
    return;
  }
  YAML::Emitter out;  // JSON is YAML: parse it, emit it in block style
  EmitBlock(YAML::Load(json), out);
  std::cout << out.c_str() << "\n";
}

std::string StateName(int state) {
  std::string name = ocs::v1::JobState_Name(static_cast<ocs::v1::JobState>(state));
  // A state this ocsctl does not know (from a newer coordinator) has no name.
  constexpr absl::string_view kPrefix = "JOB_STATE_";
  if (!absl::StartsWith(name, kPrefix)) return absl::StrCat("unknown (", state, ")");
  name.erase(0, kPrefix.size());
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  return name;
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  auto width = [](const std::string& s) {  // UTF-8 aware enough for J̄ and sparklines
    return static_cast<size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  };
  for (size_t c = 0; c < header.size(); ++c) widths[c] = width(header[c]);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], width(row[c]));
    }
  }
  auto print = [&](const std::vector<std::string>& row) {
    for (size_t c = 0; c < row.size(); ++c) {
      std::cout << row[c];
      if (c + 1 < row.size()) std::cout << std::string(widths[c] - width(row[c]) + 2, ' ');
    }
    std::cout << "\n";
  };
  print(header);
  for (const auto& row : rows) print(row);
}

std::string Age(int64_t unix_ms) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t seconds = std::max<int64_t>(0, (now - unix_ms) / 1000);
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string Sparkline(const std::vector<double>& values) {
  static const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string line;
  for (double v : values) {
    const int level = static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 7));
    line += kBars[level];
  }
  return line;
}

}  // namespace ocs::client
