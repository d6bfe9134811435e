// The gRPC side of one worker's session stream: a WorkerLink whose messages queue in an outbox
// that a writer thread drains, so the JobRunner never blocks on a slow worker.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "ocs/v1/worker_service.grpc.pb.h"
#include "server/job_runner.h"

namespace ocs::server {

class WorkerSession final : public WorkerLink {
 public:
  using Stream = grpc::ServerReaderWriter<ocs::v1::CoordinatorMessage, ocs::v1::WorkerMessage>;
  explicit WorkerSession(Stream* stream) : stream_(stream) {}

  void Assign(const RankAssignment& assignment) override;
  void SendVerdict(const std::string& job_id, int attempt, const common::Verdict& verdict) override;
  void Cancel(const std::string& job_id, int attempt, const std::string& reason) override;

  // Writes queued messages until Close(); runs on its own thread.
  void WriteLoop();
  void Close();

 private:
  void Enqueue(ocs::v1::CoordinatorMessage message);

  Stream* stream_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<ocs::v1::CoordinatorMessage> outbox_;
  bool closed_ = false;
};

}  // namespace ocs::server
