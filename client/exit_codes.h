// ocsctl's exit codes, documented in `ocsctl --help`; scripts depend on them.
#pragma once

namespace ocs::client {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the operation failed (server error, failed job)
inline constexpr int kExitInvalidInput =
    2;  // bad arguments or an invalid job spec (= common::kExitUsage)

inline constexpr char kExitCodeHelp[] =
    "Exit codes: 0 success; 1 the operation failed; 2 bad arguments or an invalid job spec.";

}  // namespace ocs::client
