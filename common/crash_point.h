// Crash points: named places where a fault test makes a process die the way a real crash would.
// With OCS_CRASH_AT=<point>[@<n>] in its environment, the process kills itself with SIGKILL
// (nothing flushed, no destructor run) the n-th time, 1 by default, it passes <point>. Without
// the variable a pass costs one load of a flag. The points are listed here, so that tests and
// docs/reliability.md name the same places.
#pragma once

#include "absl/strings/string_view.h"

namespace ocs::common {

namespace crash_point {
// Worker: an epoch report was handed to the stream, its verdict not yet heard.
inline constexpr char kReportSent[] = "worker-report-sent";
// Worker: the model was physically pruned; the epoch after the prune not yet trained.
inline constexpr char kPruned[] = "worker-pruned";
// Worker: a checkpoint's bytes are in its temporary file, not yet renamed into place.
inline constexpr char kCheckpointWritten[] = "worker-checkpoint-written";
// Coordinator: a boundary's verdict is stored, no rank has heard it yet.
inline constexpr char kBoundaryStored[] = "coordinator-boundary-stored";
// Coordinator: an uploaded artifact's file is in place, its record not yet stored.
inline constexpr char kArtifactWritten[] = "coordinator-artifact-written";
}  // namespace crash_point

// Dies here if OCS_CRASH_AT names this point and this is the pass it counts to.
void CrashPoint(absl::string_view point);

}  // namespace ocs::common
