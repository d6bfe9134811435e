#include "server/job_service.h"

#include "proto/spec_validation.h"

namespace ocs::server {

grpc::Status JobService::ValidateJob(grpc::ServerContext* /*context*/,
                                     const ocs::v1::ValidateJobRequest* request,
                                     ocs::v1::ValidateJobResponse* response) {
  // An invalid spec is a successful validation: the problems are the answer.
  *response = api::ValidateJobSpec(request->spec_yaml(),
                                   request->source().empty() ? "request" : request->source());
  return grpc::Status::OK;
}

}  // namespace ocs::server
