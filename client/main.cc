// ocsctl: the user's command line. main only declares the verbs and dispatches.
#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/job_commands.h"
#include "client/submit_command.h"
#include "client/validate_command.h"
#include "client/watch_command.h"
#include "common/cli_parse.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"ocsctl: submit and watch one-cycle structured pruning jobs on an ocs coordinator."};
  app.set_version_flag("--version", std::string("ocsctl ") + ocs::common::kVersion + " (api " +
                                        ocs::common::kApiVersion + ")");
  app.footer(ocs::client::kExitCodeHelp);
  app.require_subcommand(1);

  ocs::client::SecurityFlags security;
  app.add_option("--ca-cert", security.ca_cert,
                 "CA certificate (PEM) of a coordinator that serves TLS (or $OCS_CA_CERT)");
  app.add_option("--token-file", security.token_file,
                 "File with a bearer token for the job API (or $OCS_TOKEN_FILE); needs TLS");
  ocs::client::ValidateOptions validate;
  CLI::App* validate_command = ocs::client::AddValidateCommand(app, &validate);
  ocs::client::SubmitOptions submit;
  CLI::App* submit_command = ocs::client::AddSubmitCommand(app, &submit);
  ocs::client::ListOptions list;
  CLI::App* list_command = ocs::client::AddListCommand(app, &list);
  ocs::client::ReadOptions describe, stability, watch, workers;
  CLI::App* describe_command = ocs::client::AddDescribeCommand(app, &describe);
  CLI::App* watch_command = ocs::client::AddWatchCommand(app, &watch);
  ocs::client::CancelOptions cancel;
  CLI::App* cancel_command = ocs::client::AddCancelCommand(app, &cancel);
  CLI::App* stability_command = ocs::client::AddStabilityCommand(app, &stability);
  ocs::client::MasksOptions masks;
  CLI::App* masks_command = ocs::client::AddMasksCommand(app, &masks);
  ocs::client::DownloadOptions download;
  CLI::App* download_command = ocs::client::AddDownloadCommand(app, &download);
  CLI::App* workers_command = ocs::client::AddWorkersCommand(app, &workers);
  ocs::client::ReadOptions health;
  CLI::App* health_command = ocs::client::AddHealthCommand(app, &health);

  if (auto exit_code = ocs::common::ParseCommandLine(app, argc, argv)) return *exit_code;
  ocs::client::SetSecurityFlags(security);
  if (validate_command->parsed()) return ocs::client::RunValidate(validate);
  if (submit_command->parsed()) return ocs::client::RunSubmit(submit);
  if (list_command->parsed()) return ocs::client::RunList(list);
  if (describe_command->parsed()) return ocs::client::RunDescribe(describe);
  if (watch_command->parsed()) return ocs::client::RunWatch(watch);
  if (cancel_command->parsed()) return ocs::client::RunCancel(cancel);
  if (stability_command->parsed()) return ocs::client::RunStability(stability);
  if (masks_command->parsed()) return ocs::client::RunMasks(masks);
  if (download_command->parsed()) return ocs::client::RunDownload(download);
  if (workers_command->parsed()) return ocs::client::RunWorkers(workers);
  if (health_command->parsed()) return ocs::client::RunHealth(health);
  return ocs::client::kExitInvalidInput;
}
