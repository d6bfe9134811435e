// The Worker API as the benchmarks' fake workers speak it: they register, open their session
// stream, report boundaries and finish ranks like a real worker, but train nothing.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "ocs/v1/worker_service.grpc.pb.h"

namespace ocs::bench {

using SessionStream = grpc::ClientReaderWriter<ocs::v1::WorkerMessage, ocs::v1::CoordinatorMessage>;

// A ResNet-20 (CIFAR shape) job on synthetic data with `ranks` CPU ranks: what the fake workers
// run.
std::string FleetJobYaml(const std::string& name, int ranks, int epochs);
// Registers a CPU worker with `slots` and opens its session on `context`; nullptr if refused.
// `worker_id` (if given) receives the registration's id, for heartbeats.
std::unique_ptr<SessionStream> JoinFleet(ocs::v1::WorkerService::Stub& stub, int slots,
                                         grpc::ClientContext* context,
                                         std::string* worker_id = nullptr);
// Renews the worker's lease, as a real worker does every few seconds; false if refused.
bool Heartbeat(ocs::v1::WorkerService::Stub& stub, const std::string& worker_id);
// A rank's boundary report (all ranks' weights agree); `mask` empty for no mask.
ocs::v1::WorkerMessage EpochReport(const std::string& job_id, int attempt, int rank, int epoch,
                                   const std::string& mask);
// A rank that finished well.
ocs::v1::WorkerMessage RankSucceeded(const std::string& job_id, int attempt, int rank);

}  // namespace ocs::bench
