// The verdicts of a job run by the coordinator, for one rank's trainer: every boundary's report
// goes up (rank 0 adds the mask), the trainer waits for the coordinator's verdict.
#pragma once

#include <string>

#include "worker/agent/coordinator_session.h"
#include "worker/train/decision_source.h"

namespace ocs::worker::agent {

class AgentDecisionSource final : public train::DecisionSource {
 public:
  AgentDecisionSource(CoordinatorSession& session, std::string job_id, int rank,
                      int monitor_start_epoch)
      : session_(session),
        job_id_(std::move(job_id)),
        rank_(rank),
        monitor_start_epoch_(monitor_start_epoch) {}

  // Masks are due from monitorStartEpoch until the prune, as the coordinator's decider expects.
  bool WantsMask(int epoch) const override { return !pruned_ && epoch >= monitor_start_epoch_; }

  absl::StatusOr<common::Verdict> Decide(const train::BoundaryReport& report) override {
    train::BoundaryReport sent = report;
    if (rank_ != 0) sent.mask.reset();  // rank 0's mask speaks for all: they are identical
    auto verdict = session_.Exchange(job_id_, rank_, sent);
    if (verdict.ok() && verdict->kind == common::Verdict::Kind::kPrune) pruned_ = true;
    return verdict;
  }

 private:
  CoordinatorSession& session_;
  std::string job_id_;
  int rank_;
  int monitor_start_epoch_;
  bool pruned_ = false;
};

}  // namespace ocs::worker::agent
