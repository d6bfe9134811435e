#include "server/job_service.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mask.h"
#include "proto/spec_validation.h"
#include "server/grpc_status.h"
#include "server/request_limits.h"

namespace ocs::server {
namespace {

ocs::v1::JobState ToProto(JobState state) {
  switch (state) {
    case JobState::kPending:
      return ocs::v1::JOB_STATE_PENDING;
    case JobState::kScheduled:
      return ocs::v1::JOB_STATE_SCHEDULED;
    case JobState::kDense:
      return ocs::v1::JOB_STATE_DENSE;
    case JobState::kSparsityLearning:
      return ocs::v1::JOB_STATE_SPARSITY_LEARNING;
    case JobState::kPruned:
      return ocs::v1::JOB_STATE_PRUNED;
    case JobState::kSucceeded:
      return ocs::v1::JOB_STATE_SUCCEEDED;
    case JobState::kFailed:
      return ocs::v1::JOB_STATE_FAILED;
    case JobState::kCancelled:
      return ocs::v1::JOB_STATE_CANCELLED;
  }
  return ocs::v1::JOB_STATE_UNSPECIFIED;
}

// The states a ListJobs filter selects: RUNNING stands for every running phase.
std::vector<JobState> FromProto(ocs::v1::JobState state) {
  switch (state) {
    case ocs::v1::JOB_STATE_RUNNING:
      return {std::begin(kActiveStates), std::end(kActiveStates)};
    case ocs::v1::JOB_STATE_UNSPECIFIED:
      return {};
    default:
      break;
  }
  for (JobState s : kAllStates) {
    if (ToProto(s) == state) return {s};
  }
  return {};
}

void ToProto(const JobRecord& job, ocs::v1::Job* out) {
  out->set_id(job.id);
  out->set_name(job.name);
  out->mutable_labels()->insert(job.labels.begin(), job.labels.end());
  out->set_state(ToProto(job.state));
  out->set_spec_yaml(job.spec_yaml);
  out->set_create_time_unix_ms(job.create_time_ms);
  out->set_update_time_unix_ms(job.update_time_ms);
  out->set_message(job.message);
  out->set_restarts(job.restarts);
}

void ToProto(const TransitionRecord& t, ocs::v1::JobTransition* out) {
  if (t.from) out->set_from(ToProto(*t.from));
  out->set_to(ToProto(t.to));
  out->set_time_unix_ms(t.time_ms);
  out->set_reason(t.reason);
}

void ToProto(const BoundaryRecord& b, ocs::v1::EpochBoundary* out) {
  out->set_epoch(b.epoch);
  out->set_phase(b.phase);
  out->set_prune(b.prune);
  out->set_lambda(b.lambda);
  out->set_has_stability(b.j.has_value());
  out->set_j(b.j.value_or(0));
  out->set_j_bar(b.j_bar.value_or(0));
  out->set_train_loss(b.train_loss);
  out->set_train_accuracy(b.train_accuracy);
  out->set_test_loss(b.test_loss);
  out->set_test_accuracy(b.test_accuracy);
  out->set_flops(b.flops);
  out->set_params(b.params);
  out->set_learning_rate(b.learning_rate);
  out->set_time_unix_ms(b.time_ms);
  out->set_has_mask(!b.mask.empty());
}

}  // namespace

grpc::Status JobService::ValidateJob(grpc::ServerContext* context,
                                     const ocs::v1::ValidateJobRequest* request,
                                     ocs::v1::ValidateJobResponse* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSpecRequestBytes); !large.ok()) return large;
  // An invalid spec is a successful validation: the problems are the answer.
  *response = api::ValidateJobSpec(request->spec_yaml(),
                                   request->source().empty() ? "request" : request->source());
  return grpc::Status::OK;
}

grpc::Status JobService::SubmitJob(grpc::ServerContext* context,
                                   const ocs::v1::SubmitJobRequest* request,
                                   ocs::v1::SubmitJobResponse* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSpecRequestBytes); !large.ok()) return large;
  auto job = jobs_.Submit(request->spec_yaml(), request->source());
  if (!job.ok()) return ToGrpcStatus(job.status());
  ToProto(*job, response->mutable_job());
  return grpc::Status::OK;
}

grpc::Status JobService::GetJob(grpc::ServerContext* context, const ocs::v1::GetJobRequest* request,
                                ocs::v1::Job* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  auto job = jobs_.Get(request->id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  ToProto(*job, response);
  auto history = jobs_.History(request->id());
  if (!history.ok()) return ToGrpcStatus(history.status());
  for (const TransitionRecord& t : *history) ToProto(t, response->add_history());
  auto artifacts = jobs_.Artifacts(request->id());
  if (!artifacts.ok()) return ToGrpcStatus(artifacts.status());
  for (const ArtifactRecord& a : *artifacts) {
    ocs::v1::Artifact* out = response->add_artifacts();
    out->set_name(a.name);
    out->set_size_bytes(a.size_bytes);
  }
  return grpc::Status::OK;
}

grpc::Status JobService::ListJobs(grpc::ServerContext* context,
                                  const ocs::v1::ListJobsRequest* request,
                                  ocs::v1::ListJobsResponse* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  JobFilter filter;
  if (request->state() != ocs::v1::JOB_STATE_UNSPECIFIED) {
    filter.states = FromProto(request->state());
    if (filter.states.empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown job state");
    }
  }
  filter.labels.insert(request->label_selector().begin(), request->label_selector().end());
  auto page = jobs_.List(filter, request->page_size(), request->page_token());
  if (!page.ok()) return ToGrpcStatus(page.status());
  for (const JobRecord& job : page->jobs) ToProto(job, response->add_jobs());
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status JobService::CancelJob(grpc::ServerContext* context,
                                   const ocs::v1::CancelJobRequest* request,
                                   ocs::v1::Job* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  auto job = jobs_.Cancel(request->id(), request->reason());
  if (!job.ok()) return ToGrpcStatus(job.status());
  ToProto(*job, response);
  return grpc::Status::OK;
}

grpc::Status JobService::GetStability(grpc::ServerContext* context,
                                      const ocs::v1::GetStabilityRequest* request,
                                      ocs::v1::GetStabilityResponse* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  auto boundaries = jobs_.Boundaries(request->id());
  if (!boundaries.ok()) return ToGrpcStatus(boundaries.status());
  for (const BoundaryRecord& b : *boundaries) ToProto(b, response->add_boundaries());
  return grpc::Status::OK;
}

grpc::Status JobService::GetMasks(grpc::ServerContext* context,
                                  const ocs::v1::GetMasksRequest* request,
                                  ocs::v1::GetMasksResponse* response) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  auto boundaries = jobs_.Boundaries(request->id());
  if (!boundaries.ok()) return ToGrpcStatus(boundaries.status());
  for (const BoundaryRecord& b : *boundaries) {
    if (b.mask.empty() || (request->has_epoch() && request->epoch() != b.epoch)) continue;
    auto mask = common::DecodeMask(b.mask);
    if (!mask.ok()) return ToGrpcStatus(mask.status());  // only a damaged store gets here
    ocs::v1::EpochMask* out = response->add_masks();
    out->set_epoch(b.epoch);
    out->set_mask(b.mask);
    for (const common::GroupMask& group : mask->groups) {
      out->add_kept_per_group(static_cast<int32_t>(group.kept.size()));
      out->add_group_sizes(group.size);
    }
  }
  if (request->has_epoch() && response->masks().empty()) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("job ", request->id(), " has no mask for epoch ", request->epoch()));
  }
  return grpc::Status::OK;
}

// Polls the store: it is the record of truth across coordinator restarts, and a watcher waits at
// most one poll interval for news.
grpc::Status JobService::WatchJob(grpc::ServerContext* context,
                                  const ocs::v1::WatchJobRequest* request,
                                  grpc::ServerWriter<ocs::v1::JobEvent>* writer) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  constexpr auto kPollInterval = std::chrono::milliseconds(100);
  size_t transitions_sent = 0;
  std::set<std::pair<int, int64_t>> boundaries_sent;  // (epoch, decision time)
  std::optional<StepProgress> progress_sent;
  while (!context->IsCancelled()) {
    auto history = jobs_.History(request->id());
    if (!history.ok()) return ToGrpcStatus(history.status());
    auto boundaries = jobs_.Boundaries(request->id());
    if (!boundaries.ok()) return ToGrpcStatus(boundaries.status());
    // What is new, in time order.
    std::vector<std::pair<int64_t, ocs::v1::JobEvent>> news;
    for (size_t i = transitions_sent; i < history->size(); ++i) {
      ocs::v1::JobEvent event;
      ToProto((*history)[i], event.mutable_transition());
      news.emplace_back((*history)[i].time_ms, std::move(event));
    }
    for (const BoundaryRecord& b : *boundaries) {
      if (!boundaries_sent.insert({b.epoch, b.time_ms}).second) continue;
      ocs::v1::JobEvent event;
      ToProto(b, event.mutable_boundary());
      news.emplace_back(b.time_ms, std::move(event));
    }
    // Within one millisecond a state change comes after the boundary that caused it.
    auto key = [](const std::pair<int64_t, ocs::v1::JobEvent>& e) {
      return std::make_pair(e.first, e.second.has_transition());
    };
    std::stable_sort(news.begin(), news.end(),
                     [&](const auto& a, const auto& b) { return key(a) < key(b); });
    for (const auto& [time, event] : news) {
      if (!writer->Write(event)) return grpc::Status::CANCELLED;
    }
    const bool ended = !history->empty() && IsTerminal(history->back().to);
    // Live progress within the epoch, when it moved (never replayed: it is stale at once).
    if (auto progress = progress_.Get(request->id());
        progress && progress != progress_sent && !ended) {
      ocs::v1::JobEvent event;
      event.mutable_progress()->set_epoch(progress->epoch);
      event.mutable_progress()->set_step(progress->step);
      event.mutable_progress()->set_steps(progress->steps);
      if (!writer->Write(event)) return grpc::Status::CANCELLED;
      progress_sent = progress;
    }
    transitions_sent = history->size();
    if (ended) return grpc::Status::OK;
    std::this_thread::sleep_for(kPollInterval);
  }
  return grpc::Status::CANCELLED;
}

grpc::Status JobService::DownloadArtifact(grpc::ServerContext* context,
                                          const ocs::v1::DownloadArtifactRequest* request,
                                          grpc::ServerWriter<ocs::v1::ArtifactData>* writer) {
  if (grpc::Status denied = tokens_.Check(*context); !denied.ok()) return denied;
  if (grpc::Status large = CheckRequestSize(*request, kSmallRequestBytes); !large.ok())
    return large;
  constexpr size_t kChunkBytes = 1 << 20;
  auto artifacts = jobs_.Artifacts(request->id());
  if (!artifacts.ok()) return ToGrpcStatus(artifacts.status());
  const auto it = std::find_if(artifacts->begin(), artifacts->end(),
                               [&](const ArtifactRecord& a) { return a.name == request->name(); });
  if (it == artifacts->end()) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("job ", request->id(), " has no artifact \"", request->name(), "\""));
  }
  std::ifstream file(it->path, std::ios::binary);
  if (!file) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        absl::StrCat(request->name(), " of job ", request->id(),
                                     " is recorded but its file is gone (", it->path, ")"));
  }
  std::string buffer(kChunkBytes, '\0');
  while (!context->IsCancelled()) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize read = file.gcount();
    if (read <= 0) break;
    ocs::v1::ArtifactData chunk;
    chunk.set_data(buffer.data(), static_cast<size_t>(read));
    if (!writer->Write(chunk)) return grpc::Status::CANCELLED;
  }
  return grpc::Status::OK;
}

}  // namespace ocs::server
