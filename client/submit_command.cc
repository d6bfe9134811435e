#include "client/submit_command.h"

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "client/exit_codes.h"
#include "client/validate_command.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "proto/spec_validation.h"

namespace ocs::client {
namespace {

const char* StateName(ocs::v1::JobState state) {
  switch (state) {
    case ocs::v1::JOB_STATE_PENDING:
      return "pending";
    case ocs::v1::JOB_STATE_RUNNING:
      return "running";
    case ocs::v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case ocs::v1::JOB_STATE_FAILED:
      return "failed";
    case ocs::v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

bool Terminal(ocs::v1::JobState state) {
  return state == ocs::v1::JOB_STATE_SUCCEEDED || state == ocs::v1::JOB_STATE_FAILED ||
         state == ocs::v1::JOB_STATE_CANCELLED;
}

int RpcError(const grpc::Status& status, const std::string& coordinator) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    std::cerr << "error: cannot reach the coordinator at " << coordinator << " ("
              << status.error_message() << ")\n";
  } else {
    std::cerr << "error: " << status.error_message() << "\n";
  }
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? kExitInvalidInput
                                                                   : kExitFailure;
}

// Polls the job until it ends, printing each state change; the exit code of its outcome.
int Follow(ocs::v1::JobService::Stub& stub, const std::string& id, const std::string& coordinator) {
  ocs::v1::JobState last = ocs::v1::JOB_STATE_UNSPECIFIED;
  while (true) {
    ocs::v1::GetJobRequest request;
    request.set_id(id);
    ocs::v1::Job job;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const grpc::Status status = stub.GetJob(&context, request, &job);
    if (!status.ok()) return RpcError(status, coordinator);
    if (job.state() != last) {
      std::cout << id << ": " << StateName(job.state())
                << (job.message().empty() ? "" : " (" + job.message() + ")") << std::endl;
      last = job.state();
    }
    if (Terminal(job.state())) {
      return job.state() == ocs::v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitFailure;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

std::string ResolveCoordinator(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("OCS_COORDINATOR"); env && *env) return env;
  return "localhost:7070";
}

CLI::App* AddSubmitCommand(CLI::App& app, SubmitOptions* options) {
  CLI::App* command = app.add_subcommand("submit", "Validate and submit a job; print its id");
  command->add_option("file", options->file, "PruningJob YAML file")->required();
  command->add_option("--coordinator", options->coordinator,
                      "Coordinator address (default: $OCS_COORDINATOR, then localhost:7070)");
  command->add_flag("--follow", options->follow,
                    "Wait for the end: exit 0 on success, 1 on failure or cancellation");
  return command;
}

int RunSubmit(const SubmitOptions& options) {
  std::string text, error;
  if (!ReadSpecFile(options.file, &text, &error)) {
    std::cerr << "error: " << error << "\n";
    return kExitInvalidInput;
  }
  // Validate locally first: the same problems the coordinator would report, without a round trip.
  const ocs::v1::ValidateJobResponse validation = api::ValidateJobSpec(text, options.file);
  if (!validation.valid()) {
    PrintSpecProblems(validation, options.file);
    return kExitInvalidInput;
  }
  const std::string coordinator = ResolveCoordinator(options.coordinator);
  auto stub = ocs::v1::JobService::NewStub(
      grpc::CreateChannel(coordinator, grpc::InsecureChannelCredentials()));
  ocs::v1::SubmitJobRequest request;
  request.set_spec_yaml(text);
  request.set_source(options.file);
  ocs::v1::SubmitJobResponse response;
  grpc::ClientContext context;
  // A coordinator that is still starting gets a few seconds to come up.
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const grpc::Status status = stub->SubmitJob(&context, request, &response);
  if (!status.ok()) return RpcError(status, coordinator);
  std::cout << response.job().id() << std::endl;
  return options.follow ? Follow(*stub, response.job().id(), coordinator) : kExitOk;
}

}  // namespace ocs::client
