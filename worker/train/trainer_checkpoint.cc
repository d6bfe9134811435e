// Saving and resuming a run, and the final report: the Trainer's state to and from a checkpoint.
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "worker/engine/optimizer_state.h"
#include "worker/engine/surgery.h"
#include "worker/train/checkpoint.h"
#include "worker/train/trainer_state.h"

namespace ocs::worker::train {
namespace {

constexpr int kCheckpointFormat = 1;

std::string MaskToText(const common::Mask& mask) {
  return absl::Base64Escape(common::EncodeMask(mask));
}

absl::StatusOr<common::Mask> MaskFromText(const std::string& text) {
  std::string bytes;
  if (!absl::Base64Unescape(text, &bytes)) return absl::DataLossError("checkpoint: bad mask");
  return common::DecodeMask(bytes);
}

template <typename T>
nlohmann::json Optional(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

template <typename T>
std::optional<T> OptionalFrom(const nlohmann::json& value) {
  return value.is_null() ? std::nullopt : std::optional<T>(value.get<T>());
}

nlohmann::json RecordJson(const EpochRecord& r) {
  return {{"epoch", r.epoch},
          {"phase", common::ToString(r.phase)},
          {"trainLoss", r.train_loss},
          {"trainAccuracy", r.train_accuracy},
          {"testLoss", r.test_loss},
          {"testAccuracy", r.test_accuracy},
          {"lr", r.lr},
          {"lambda", r.lambda},
          {"j", Optional(r.j)},
          {"jBar", Optional(r.j_bar)},
          {"flops", r.flops},
          {"params", r.params},
          {"imagesPerSecond", r.images_per_second},
          {"seconds",
           {{"data", r.timings.data_s},
            {"compute", r.timings.compute_s},
            {"allreduce", r.timings.allreduce_s},
            {"mask", r.timings.mask_s},
            {"eval", r.timings.eval_s}}}};
}

EpochRecord RecordFrom(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j["epoch"];
  r.phase = common::PhaseFromString(j["phase"].get<std::string>()).value_or(common::Phase::kDense);
  r.train_loss = j["trainLoss"], r.train_accuracy = j["trainAccuracy"];
  r.test_loss = j["testLoss"], r.test_accuracy = j["testAccuracy"];
  r.lr = j["lr"], r.lambda = j["lambda"];
  r.j = OptionalFrom<double>(j["j"]), r.j_bar = OptionalFrom<double>(j["jBar"]);
  r.flops = j["flops"], r.params = j["params"], r.images_per_second = j["imagesPerSecond"];
  return r;
}

}  // namespace

absl::Status Trainer::State::SaveCheckpoint() {
  if (collectives.rank() != 0) return absl::OkStatus();  // all ranks hold the same state
  nlohmann::json meta = {
      {"format", kCheckpointFormat},
      {"nextEpoch", next_epoch},
      {"iteration", iteration},
      // The decider's own state restores the standalone decider only; in service mode it stays
      // empty (the coordinator decides and keeps its own). What the run reports is the trainer's.
      {"sparsityStart", Optional(decider->sparsity_start())},
      {"pruneEpoch", Optional(summary.prune_epoch)},
      {"pruneMask", prune_mask ? nlohmann::json(MaskToText(*prune_mask)) : nlohmann::json(nullptr)},
      {"accuracyBeforePrune", Optional(summary.accuracy_before_prune)},
      {"accuracyAfterPrune", Optional(summary.accuracy_after_prune)},
      {"series", nlohmann::json::array()},
      {"recentMasks", nlohmann::json::array()},
      {"epochs", nlohmann::json::array()}};
  for (const common::StabilityPoint& p : decider->tracker().series()) {
    meta["series"].push_back({p.epoch, p.j, p.j_bar});
  }
  for (const common::Mask& mask : decider->tracker().recent_masks()) {
    meta["recentMasks"].push_back(MaskToText(mask));
  }
  for (const EpochRecord& record : summary.epochs) meta["epochs"].push_back(RecordJson(record));

  Checkpoint checkpoint{meta.dump(), {}};
  for (const auto& item : model->named_parameters()) {
    checkpoint.tensors.emplace("param/" + item.key(), item.value());
    auto& state = optimizer->state();
    const auto it = state.find(engine::OptimizerStateKey(item.value()));
    if (it == state.end()) continue;
    const auto& sgd = static_cast<const torch::optim::SGDParamState&>(*it->second);
    if (sgd.momentum_buffer().defined()) {
      checkpoint.tensors.emplace("momentum/" + item.key(), sgd.momentum_buffer());
    }
  }
  for (const auto& item : model->named_buffers()) {
    checkpoint.tensors.emplace("buffer/" + item.key(), item.value());
  }
  return WriteCheckpoint(options.output_dir, next_epoch, checkpoint);
}

absl::Status Trainer::State::StartFresh() {
  if (collectives.rank() != 0) return absl::OkStatus();  // rank 0 alone writes the folder
  absl::StatusOr<std::string> folder = SetAsideEarlierRun(options.output_dir);
  if (!folder.ok()) return folder.status();
  if (!folder->empty()) {
    common::LogWarning(absl::StrCat(
        options.output_dir, " held the checkpoints of an earlier run: moved them (with its ",
        "model.pt and report.json) to ", *folder,
        "; this run starts from epoch 0 (to continue that run instead, move them back and "
        "resume)"));
  }
  return absl::OkStatus();
}

absl::Status Trainer::State::Resume() {
  std::vector<std::string> skipped;
  auto checkpoint = ReadLatestCheckpoint(options.output_dir, &skipped);
  if (absl::IsNotFound(checkpoint.status())) {
    common::LogInfo(
        absl::StrCat("no checkpoint in ", options.output_dir, ": starting from epoch 0"));
    return absl::OkStatus();
  }
  if (!checkpoint.ok()) return checkpoint.status();  // every file named, none readable
  for (const std::string& problem : skipped) common::LogWarning(absl::StrCat("skipping ", problem));
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(checkpoint->meta_json);
    if (meta["format"] != kCheckpointFormat) {
      return absl::FailedPreconditionError("checkpoint: unsupported format");
    }
    if (!meta["pruneMask"].is_null()) {
      auto mask = MaskFromText(meta["pruneMask"]);
      if (!mask.ok()) return mask.status();
      // The pruned architecture comes back from the stored mask.
      if (absl::Status status = engine::PruneModel(*model, *groups, *mask); !status.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("checkpoint does not fit this job's model: ", status.message()));
      }
      prune_mask = *mask;
    }
    std::vector<common::StabilityPoint> series;
    for (const auto& p : meta["series"]) series.push_back({p[0].get<int>(), p[1], p[2]});
    std::deque<common::Mask> recent;
    for (const auto& text : meta["recentMasks"]) {
      auto mask = MaskFromText(text);
      if (!mask.ok()) return mask.status();
      recent.push_back(*mask);
    }
    decider->Restore(std::move(series), std::move(recent), OptionalFrom<int>(meta["sparsityStart"]),
                     OptionalFrom<int>(meta["pruneEpoch"]));
    next_epoch = meta["nextEpoch"];
    iteration = meta["iteration"];
    summary.prune_epoch = OptionalFrom<int>(meta["pruneEpoch"]);
    summary.accuracy_before_prune = OptionalFrom<double>(meta["accuracyBeforePrune"]);
    summary.accuracy_after_prune = OptionalFrom<double>(meta["accuracyAfterPrune"]);
    for (const auto& record : meta["epochs"]) summary.epochs.push_back(RecordFrom(record));
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("checkpoint: malformed state (", e.what(), ")"));
  }
  at::NoGradGuard no_grad;
  auto restore = [&](const std::string& prefix, const std::string& name, at::Tensor& tensor) {
    const auto it = checkpoint->tensors.find(prefix + name);
    if (it == checkpoint->tensors.end() || it->second.sizes() != tensor.sizes()) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint does not fit this job's model: ", prefix, name));
    }
    tensor.copy_(it->second);
    return absl::OkStatus();
  };
  for (auto& item : model->named_parameters()) {
    if (absl::Status s = restore("param/", item.key(), item.value()); !s.ok()) return s;
  }
  for (auto& item : model->named_buffers()) {
    if (absl::Status s = restore("buffer/", item.key(), item.value()); !s.ok()) return s;
  }
  for (const auto& [key, tensor] : checkpoint->tensors) {
    if (key.rfind("momentum/", 0) == 0) resumed_momentum.emplace(key.substr(9), tensor);
  }
  common::LogInfo(absl::StrCat("resuming at epoch ", next_epoch, " (iteration ", iteration, ")"));
  return absl::OkStatus();
}

void Trainer::State::RestoreMomentum() {
  for (const auto& item : model->named_parameters()) {
    const auto it = resumed_momentum.find(item.key());
    if (it == resumed_momentum.end()) continue;
    auto state = std::make_unique<torch::optim::SGDParamState>();
    state->momentum_buffer(it->second.to(device));
    optimizer->state()[engine::OptimizerStateKey(item.value())] = std::move(state);
  }
  resumed_momentum.clear();
}

std::string Trainer::State::ReportJson(const std::string& prune_report) const {
  nlohmann::json report = nlohmann::json::parse(prune_report);
  report["job"] = options.spec.metadata.name;
  report["arch"] = options.spec.model.arch;
  report["pruneEpoch"] = Optional(summary.prune_epoch);
  report["accuracyBeforePrune"] = Optional(summary.accuracy_before_prune);
  report["accuracyAfterPrune"] = Optional(summary.accuracy_after_prune);
  report["finalAccuracy"] = summary.epochs.empty() ? 0.0 : summary.epochs.back().test_accuracy;
  report["device"] = common::ToString(options.spec.resources.device);
  report["cudaGraphCaptures"] = summary.cuda_graph_captures;
  report["epochs"] = nlohmann::json::array();
  for (const EpochRecord& record : summary.epochs) report["epochs"].push_back(RecordJson(record));
  return report.dump(2);
}

}  // namespace ocs::worker::train
