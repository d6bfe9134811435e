// ocsctl's exit codes, documented in `ocsctl --help`; scripts depend on them.
#pragma once

namespace ocs::client {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the operation failed (server error, failed job)
inline constexpr int kExitInvalidInput =
    2;  // bad arguments or an invalid job spec (= common::kExitUsage)

inline constexpr char kExitCodeHelp[] =
    "Exit codes: 0 success (submit --follow, watch: the job succeeded); 1 the operation failed "
    "(coordinator unreachable, unknown job, server error) or the followed job failed or was "
    "cancelled; 2 bad arguments, an invalid job spec, or a request the coordinator refused as "
    "invalid.\n"
    "Coordinator: --coordinator, else $OCS_COORDINATOR, else `coordinator:` in "
    "~/.config/ocs/config.yaml ($XDG_CONFIG_HOME/ocs/config.yaml when set), else localhost:7070.";

}  // namespace ocs::client
