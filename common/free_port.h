// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close): for local
// rendezvous stores, and for tests and benchmarks that start servers on loopback.
#pragma once

#include "absl/status/statusor.h"

namespace ocs::common {

absl::StatusOr<int> PickFreeLoopbackPort();

}  // namespace ocs::common
