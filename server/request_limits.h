// Request size limits per RPC. The server refuses any message past 4 MiB before our code runs
// (CoordinatorServer::kMaxRequestBytes); each handler then holds its request to what its largest
// legitimate one needs, so an id of megabytes never reaches the store, a log line or a path.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>

#include "common/job_spec_yaml.h"

namespace google::protobuf {
class Message;
}

namespace ocs::server {

// Ids, names, label selectors, page tokens, a worker's host and version.
inline constexpr size_t kSmallRequestBytes = 16 << 10;
// ValidateJob and SubmitJob: a spec at its size limit, with its source name.
inline constexpr size_t kSpecRequestBytes = common::kMaxJobSpecBytes + kSmallRequestBytes;
// A session message after the hello: an epoch report carries rank 0's mask.
inline constexpr size_t kSessionMessageBytes = 1 << 20;
// An upload chunk: 1 MiB of data and its header (the worker sends 1 MiB chunks).
inline constexpr size_t kArtifactChunkBytes = (1 << 20) + kSmallRequestBytes;

// RESOURCE_EXHAUSTED naming the message and the limit when `request` is larger than `limit`.
grpc::Status CheckRequestSize(const google::protobuf::Message& request, size_t limit);

}  // namespace ocs::server
