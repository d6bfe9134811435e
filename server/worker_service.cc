#include "server/worker_service.h"

#include "server/grpc_status.h"

namespace ocs::server {

grpc::Status WorkerService::RegisterWorker(grpc::ServerContext* /*context*/,
                                           const ocs::v1::RegisterWorkerRequest* request,
                                           ocs::v1::RegisterWorkerResponse* response) {
  common::Device device;
  switch (request->device()) {
    case ocs::v1::DEVICE_TYPE_CPU:
      device = common::Device::kCpu;
      break;
    case ocs::v1::DEVICE_TYPE_CUDA:
      device = common::Device::kCuda;
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "device: must be cpu or cuda");
  }
  auto worker = workers_.Register(request->host(), device, request->slots(), request->version());
  if (!worker.ok()) return ToGrpcStatus(worker.status());
  response->set_worker_id(worker->id);
  response->set_lease_seconds(workers_.lease_seconds());
  return grpc::Status::OK;
}

grpc::Status WorkerService::Heartbeat(grpc::ServerContext* /*context*/,
                                      const ocs::v1::HeartbeatRequest* request,
                                      ocs::v1::HeartbeatResponse* response) {
  if (absl::Status status = workers_.Heartbeat(request->worker_id()); !status.ok()) {
    return ToGrpcStatus(status);
  }
  response->set_lease_seconds(workers_.lease_seconds());
  return grpc::Status::OK;
}

grpc::Status WorkerService::ListWorkers(grpc::ServerContext* /*context*/,
                                        const ocs::v1::ListWorkersRequest* /*request*/,
                                        ocs::v1::ListWorkersResponse* response) {
  for (const WorkerInfo& worker : workers_.List()) {
    ocs::v1::Worker* out = response->add_workers();
    out->set_worker_id(worker.id);
    out->set_host(worker.host);
    out->set_device(worker.device == common::Device::kCuda ? ocs::v1::DEVICE_TYPE_CUDA
                                                           : ocs::v1::DEVICE_TYPE_CPU);
    out->set_slots(worker.slots);
    out->set_free_slots(worker.free_slots);
    out->set_version(worker.version);
    out->set_last_heartbeat_unix_ms(worker.last_heartbeat_ms);
    out->set_alive(workers_.Alive(worker));
  }
  return grpc::Status::OK;
}

}  // namespace ocs::server
