// The gRPC adapter of the user-facing Job API: translates messages and calls the core.
#pragma once

#include "ocs/v1/job_service.grpc.pb.h"

namespace ocs::server {

class JobService final : public ocs::v1::JobService::Service {
 public:
  grpc::Status ValidateJob(grpc::ServerContext* context, const ocs::v1::ValidateJobRequest* request,
                           ocs::v1::ValidateJobResponse* response) override;
};

}  // namespace ocs::server
