// ocsctl: the user's command line. main only declares the verbs and dispatches.
#include "client/exit_codes.h"
#include "client/submit_command.h"
#include "client/validate_command.h"
#include "common/cli_parse.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"ocsctl: submit and watch one-cycle structured pruning jobs on an ocs coordinator."};
  app.set_version_flag("--version", std::string("ocsctl ") + ocs::common::kVersion + " (api " +
                                        ocs::common::kApiVersion + ")");
  app.footer(ocs::client::kExitCodeHelp);
  app.require_subcommand(1);

  ocs::client::ValidateOptions validate;
  CLI::App* validate_command = ocs::client::AddValidateCommand(app, &validate);
  ocs::client::SubmitOptions submit;
  CLI::App* submit_command = ocs::client::AddSubmitCommand(app, &submit);

  if (auto exit_code = ocs::common::ParseCommandLine(app, argc, argv)) return *exit_code;
  if (validate_command->parsed()) return ocs::client::RunValidate(validate);
  if (submit_command->parsed()) return ocs::client::RunSubmit(submit);
  return ocs::client::kExitInvalidInput;
}
