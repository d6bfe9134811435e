#include "server/request_limits.h"

#include <google/protobuf/message.h>

#include "absl/strings/str_cat.h"

namespace ocs::server {

grpc::Status CheckRequestSize(const google::protobuf::Message& request, size_t limit) {
  const size_t size = request.ByteSizeLong();
  if (size <= limit) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat(request.GetDescriptor()->name(), " is ", size,
                                   " bytes; this call accepts at most ", limit));
}

}  // namespace ocs::server
