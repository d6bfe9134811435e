#include "server/worker_session.h"

#include "common/prune_decider.h"

namespace ocs::server {

void WorkerSession::Enqueue(ocs::v1::CoordinatorMessage message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    outbox_.push_back(std::move(message));
  }
  ready_.notify_one();
}

void WorkerSession::Assign(const RankAssignment& assignment) {
  ocs::v1::CoordinatorMessage message;
  ocs::v1::Assignment* out = message.mutable_assignment();
  out->set_job_id(assignment.job_id);
  out->set_spec_yaml(assignment.spec_yaml);
  out->set_rank(assignment.rank);
  out->set_world_size(assignment.world_size);
  out->set_master(assignment.master);
  out->set_attempt(assignment.attempt);
  out->set_resume(assignment.resume);
  Enqueue(std::move(message));
}

void WorkerSession::SendVerdict(const std::string& job_id, int attempt,
                                const common::Verdict& verdict) {
  ocs::v1::CoordinatorMessage message;
  ocs::v1::Verdict* out = message.mutable_verdict();
  out->set_job_id(job_id);
  out->set_attempt(attempt);
  out->set_epoch(verdict.epoch);
  out->set_kind(verdict.kind == common::Verdict::Kind::kPrune ? ocs::v1::VERDICT_KIND_PRUNE
                                                              : ocs::v1::VERDICT_KIND_CONTINUE);
  out->set_phase(common::ToString(verdict.phase));
  if (verdict.mask) out->set_mask(common::EncodeMask(*verdict.mask));
  out->set_lambda(verdict.lambda);
  if (verdict.point) {
    out->set_has_stability(true);
    out->set_j(verdict.point->j);
    out->set_j_bar(verdict.point->j_bar);
  }
  Enqueue(std::move(message));
}

void WorkerSession::Cancel(const std::string& job_id, int attempt, const std::string& reason) {
  ocs::v1::CoordinatorMessage message;
  message.mutable_cancel()->set_job_id(job_id);
  message.mutable_cancel()->set_attempt(attempt);
  message.mutable_cancel()->set_reason(reason);
  Enqueue(std::move(message));
}

void WorkerSession::WriteLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    ready_.wait(lock, [this] { return closed_ || !outbox_.empty(); });
    if (closed_) return;
    ocs::v1::CoordinatorMessage message = std::move(outbox_.front());
    outbox_.pop_front();
    lock.unlock();
    const bool written = stream_->Write(message);
    lock.lock();
    if (!written) closed_ = true;
  }
}

void WorkerSession::Close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
}

}  // namespace ocs::server
