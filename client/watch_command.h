// `ocsctl watch JOB`: the job's events as they happen, until it ends — state changes, each epoch
// boundary with its phase, loss, accuracy, FLOPs and the stability score J̄ with a sparkline of
// its history, and on a terminal a bar of the current epoch's steps, redrawn in place. Plain
// lines otherwise; -o json prints one event per line, progress included.
// Exit code: 0 when the job succeeded, 1 when it failed or was cancelled.
#pragma once

#include <string>

#include "client/connection.h"
#include "client/job_commands.h"

namespace ocs::client {

CLI::App* AddWatchCommand(CLI::App& app, ReadOptions* options);
int RunWatch(const ReadOptions& options);

// What watch does, for `submit --follow` too.
int FollowJob(Connection& connection, const std::string& id, const std::string& output);

}  // namespace ocs::client
