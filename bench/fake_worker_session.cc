#include "bench/fake_worker_session.h"

#include "absl/strings/str_cat.h"
#include "common/version.h"

namespace ocs::bench {

std::string FleetJobYaml(const std::string& name, int ranks, int epochs) {
  return absl::StrCat(
      "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: ", name,
      "}\nspec:\n  model: {arch: resnet20, numClasses: 10, inputShape: [3, 32, 32]}\n"
      "  data: {dataset: synthetic}\n  training: {epochs: ",
      epochs, ", batchSize: ", 8 * ranks,
      "}\n  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: ",
      epochs - 1, "}\n  resources: {workers: ", ranks, ", device: cpu}\n");
}

std::unique_ptr<SessionStream> JoinFleet(ocs::v1::WorkerService::Stub& stub, int slots,
                                         grpc::ClientContext* context, std::string* worker_id) {
  ocs::v1::RegisterWorkerRequest request;
  request.set_host("127.0.0.1");
  request.set_device(ocs::v1::DEVICE_TYPE_CPU);
  request.set_slots(slots);
  request.set_version(ocs::common::kVersion);
  ocs::v1::RegisterWorkerResponse registered;
  grpc::ClientContext register_context;
  if (!stub.RegisterWorker(&register_context, request, &registered).ok()) return nullptr;
  if (worker_id) *worker_id = registered.worker_id();
  std::unique_ptr<SessionStream> stream = stub.Session(context);
  ocs::v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id(registered.worker_id());
  if (!stream->Write(hello)) return nullptr;
  return stream;
}

bool Heartbeat(ocs::v1::WorkerService::Stub& stub, const std::string& worker_id) {
  ocs::v1::HeartbeatRequest request;
  request.set_worker_id(worker_id);
  ocs::v1::HeartbeatResponse response;
  grpc::ClientContext context;
  return stub.Heartbeat(&context, request, &response).ok();
}

ocs::v1::WorkerMessage EpochReport(const std::string& job_id, int attempt, int rank, int epoch,
                                   const std::string& mask) {
  ocs::v1::WorkerMessage out;
  ocs::v1::EpochReport* report = out.mutable_report();
  report->set_job_id(job_id);
  report->set_attempt(attempt);
  report->set_rank(rank);
  report->set_epoch(epoch);
  report->set_weights_digest(7);
  report->set_test_accuracy(0.5);
  if (!mask.empty()) report->set_mask(mask);
  return out;
}

ocs::v1::WorkerMessage RankSucceeded(const std::string& job_id, int attempt, int rank) {
  ocs::v1::WorkerMessage out;
  out.mutable_finished()->set_job_id(job_id);
  out.mutable_finished()->set_attempt(attempt);
  out.mutable_finished()->set_rank(rank);
  out.mutable_finished()->set_succeeded(true);
  return out;
}

}  // namespace ocs::bench
