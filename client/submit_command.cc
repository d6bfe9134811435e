#include "client/submit_command.h"

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/validate_command.h"
#include "client/watch_command.h"
#include "common/job_spec_yaml.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "proto/spec_validation.h"

namespace ocs::client {

CLI::App* AddSubmitCommand(CLI::App& app, SubmitOptions* options) {
  CLI::App* command = app.add_subcommand("submit", "Validate and submit a job; print its id");
  command->add_option("file", options->file, "PruningJob YAML file")->required();
  AddCoordinatorOption(command, &options->coordinator);
  command->add_flag("--follow", options->follow,
                    "Stream the job's progress until its end: exit 0 on success, 1 on failure "
                    "or cancellation");
  return command;
}

int RunSubmit(const SubmitOptions& options) {
  const absl::StatusOr<std::string> read = common::ReadJobSpecFile(options.file);
  if (!read.ok()) {
    std::cerr << "error: " << read.status().message() << "\n";
    return kExitInvalidInput;
  }
  const std::string& text = *read;
  // Validate locally first: the same problems the coordinator would report, without a round trip.
  const ocs::v1::ValidateJobResponse validation = api::ValidateJobSpec(text, options.file);
  if (!validation.valid()) {
    PrintSpecProblems(validation, options.file);
    return kExitInvalidInput;
  }
  PrintSpecWarnings(validation, options.file);
  Connection connection(options.coordinator);
  ocs::v1::SubmitJobRequest request;
  request.set_spec_yaml(text);
  request.set_source(options.file);
  ocs::v1::SubmitJobResponse response;
  grpc::ClientContext context;
  Connection::Prepare(context);  // a coordinator that is still starting gets a few seconds
  const grpc::Status status = connection.jobs().SubmitJob(&context, request, &response);
  if (!status.ok()) return connection.Fail(status);
  std::cout << response.job().id() << std::endl;
  return options.follow ? FollowJob(connection, response.job().id(), "table") : kExitOk;
}

}  // namespace ocs::client
