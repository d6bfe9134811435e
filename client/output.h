// How read verbs print: an aligned table for people (the default), or the API's own messages as
// JSON or YAML for scripts — the field names are the ocs.v1 proto's JSON names, stable across
// releases of the v1 API.
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace CLI {
class Option;
class App;
}  // namespace CLI

namespace ocs::client {

enum class OutputFormat { kTable, kJson, kYaml };

// Adds `-o,--output table|json|yaml` to a read verb.
CLI::Option* AddOutputOption(CLI::App* command, std::string* output);
OutputFormat ParseOutputFormat(const std::string& output);

// Prints `message` as JSON or YAML (for kTable, as JSON).
void PrintMessage(const google::protobuf::Message& message, OutputFormat format);

// Columns padded to their widest cell.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// Prints a JSON document as it is, or as YAML.
void PrintJson(const std::string& json, OutputFormat format);

// "running", "succeeded", ...: a job state as people read it.
std::string StateName(int state);

// "3m", "2h", "5d": how long ago `unix_ms` was.
std::string Age(int64_t unix_ms);
// A text sparkline of values in [0, 1] (J̄ over the epochs).
std::string Sparkline(const std::vector<double>& values);

}  // namespace ocs::client
