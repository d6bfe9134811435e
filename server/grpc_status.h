// The one place where absl::Status becomes grpc::Status, at the RPC boundary.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ocs::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace ocs::server
