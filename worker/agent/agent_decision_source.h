// The verdicts of a job run by the coordinator, for one rank's trainer: every boundary's report
// goes up (rank 0 adds the mask), the trainer waits for the coordinator's verdict.
#pragma once

#include <string>

#include "worker/agent/coordinator_session.h"
#include "worker/train/decision_source.h"

namespace ocs::worker::agent {

class AgentDecisionSource final : public train::DecisionSource {
 public:
  AgentDecisionSource(CoordinatorSession& session, Assignment assignment, int monitor_start_epoch)
      : session_(session),
        assignment_(std::move(assignment)),
        monitor_start_epoch_(monitor_start_epoch) {}

  // Masks are due from monitorStartEpoch until the prune, as the coordinator's decider expects.
  bool WantsMask(int epoch) const override { return !pruned_ && epoch >= monitor_start_epoch_; }

  absl::StatusOr<common::Verdict> Decide(const train::BoundaryReport& report) override {
    train::BoundaryReport sent = report;
    if (assignment_.rank != 0) sent.mask.reset();  // rank 0's mask speaks for all
    auto verdict = session_.Exchange(assignment_, sent);
    if (verdict.ok() && verdict->kind == common::Verdict::Kind::kPrune) pruned_ = true;
    return verdict;
  }

  // A rank resumed past the prune asks for no more masks.
  void OnResume(int /*next_epoch*/, bool pruned) override { pruned_ = pruned; }

 private:
  CoordinatorSession& session_;
  Assignment assignment_;
  int monitor_start_epoch_;
  bool pruned_ = false;
};

}  // namespace ocs::worker::agent
