// The gRPC adapter of the user-facing Job API: translates messages and calls the JobManager.
// Every call must bring one of the bearer tokens when the coordinator has any.
#pragma once

#include "ocs/v1/job_service.grpc.pb.h"
#include "proto/transport_security.h"
#include "server/job_manager.h"
#include "server/progress_board.h"

namespace ocs::server {

class JobService final : public ocs::v1::JobService::Service {
 public:
  JobService(JobManager& jobs, const ProgressBoard& progress, api::TokenAuthenticator tokens)
      : jobs_(jobs), progress_(progress), tokens_(std::move(tokens)) {}

  grpc::Status ValidateJob(grpc::ServerContext* context, const ocs::v1::ValidateJobRequest* request,
                           ocs::v1::ValidateJobResponse* response) override;
  grpc::Status SubmitJob(grpc::ServerContext* context, const ocs::v1::SubmitJobRequest* request,
                         ocs::v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const ocs::v1::GetJobRequest* request,
                      ocs::v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const ocs::v1::ListJobsRequest* request,
                        ocs::v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const ocs::v1::CancelJobRequest* request,
                         ocs::v1::Job* response) override;
  grpc::Status GetStability(grpc::ServerContext* context,
                            const ocs::v1::GetStabilityRequest* request,
                            ocs::v1::GetStabilityResponse* response) override;
  grpc::Status GetMasks(grpc::ServerContext* context, const ocs::v1::GetMasksRequest* request,
                        ocs::v1::GetMasksResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const ocs::v1::WatchJobRequest* request,
                        grpc::ServerWriter<ocs::v1::JobEvent>* writer) override;
  grpc::Status DownloadArtifact(grpc::ServerContext* context,
                                const ocs::v1::DownloadArtifactRequest* request,
                                grpc::ServerWriter<ocs::v1::ArtifactData>* writer) override;

 private:
  JobManager& jobs_;
  const ProgressBoard& progress_;
  const api::TokenAuthenticator tokens_;
};

}  // namespace ocs::server
