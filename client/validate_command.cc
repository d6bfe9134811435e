#include "client/validate_command.h"

#include <iostream>

#include <google/protobuf/util/json_util.h>
#include <CLI/CLI.hpp>

#include "client/exit_codes.h"
#include "common/job_spec_yaml.h"
#include "common/spec_error.h"
#include "proto/spec_validation.h"

namespace ocs::client {

void PrintSpecProblems(const ocs::v1::ValidateJobResponse& result, const std::string& source) {
  std::cerr << "error: invalid job spec " << source << ": " << result.errors_size()
            << (result.errors_size() == 1 ? " problem\n" : " problems\n");
  for (const ocs::v1::SpecError& e : result.errors()) {
    std::cerr << "  "
              << common::FormatSpecError({e.field(), e.problem(), e.line(), e.column()}, source)
              << "\n";
  }
}

void PrintSpecWarnings(const ocs::v1::ValidateJobResponse& result, const std::string& source) {
  for (const ocs::v1::SpecError& w : result.warnings()) {
    std::cerr << "warning: "
              << common::FormatSpecError({w.field(), w.problem(), w.line(), w.column()}, source)
              << "\n";
  }
}

CLI::App* AddValidateCommand(CLI::App& app, ValidateOptions* options) {
  CLI::App* command = app.add_subcommand(
      "validate", "Check a job spec and list every problem (no coordinator needed)");
  command->add_option("file", options->file, "PruningJob YAML file")->required();
  command
      ->add_option("-o,--output", options->output,
                   "text, yaml (the spec with all defaults) "
                   "or json")
      ->check(CLI::IsMember({"text", "yaml", "json"}))
      ->capture_default_str();
  return command;
}

int RunValidate(const ValidateOptions& options) {
  const absl::StatusOr<std::string> text = common::ReadJobSpecFile(options.file);
  if (!text.ok()) {
    std::cerr << "error: " << text.status().message() << "\n";
    return kExitInvalidInput;
  }
  const ocs::v1::ValidateJobResponse result = api::ValidateJobSpec(*text, options.file);
  if (options.output == "json") {
    std::string json;
    google::protobuf::util::JsonPrintOptions print;
    print.add_whitespace = true;
    print.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(result, &json, print);
    std::cout << json;
  } else if (options.output == "yaml" && result.valid()) {
    PrintSpecWarnings(result, options.file);
    std::cout << result.canonical_yaml();
  } else if (result.valid()) {
    PrintSpecWarnings(result, options.file);
    std::cout << options.file << ": valid PruningJob \"" << result.job_name() << "\"\n";
  } else {
    PrintSpecProblems(result, options.file);
  }
  return result.valid() ? kExitOk : kExitInvalidInput;
}

}  // namespace ocs::client
