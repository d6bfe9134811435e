// The canonical YAML form of a JobSpec: every field written out, defaults included, so that a
// stored or described spec says exactly what ran.
#include <charconv>

#include <yaml-cpp/yaml.h>

#include "common/job_spec_yaml.h"

namespace ocs::common {
namespace {

// The shortest text that reads back as the same double ("0.1", not "0.10000000000000001").
std::string Shortest(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

template <typename T>
const T& Scalar(const T& value) {
  return value;
}
std::string Scalar(double value) { return Shortest(value); }

template <typename T>
void Key(YAML::Emitter& out, const char* key, const T& value) {
  out << YAML::Key << key << YAML::Value << Scalar(value);
}

template <typename T>
void FlowList(YAML::Emitter& out, const char* key, const std::vector<T>& values) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const T& value : values) out << Scalar(value);
  out << YAML::EndSeq;
}

void EmitModelAndData(YAML::Emitter& out, const JobSpec& spec) {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  Key(out, "arch", spec.model.arch);
  Key(out, "numClasses", spec.model.num_classes);
  FlowList(out, "inputShape", spec.model.input_shape);
  out << YAML::EndMap;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  Key(out, "dataset", ToString(spec.data.dataset));
  if (!spec.data.path.empty()) Key(out, "path", spec.data.path);
  Key(out, "trainLimit", spec.data.train_limit);
  Key(out, "testLimit", spec.data.test_limit);
  Key(out, "augment", spec.data.augment);
  out << YAML::EndMap;
}

void EmitTraining(YAML::Emitter& out, const TrainingSpec& training) {
  out << YAML::Key << "training" << YAML::Value << YAML::BeginMap;
  Key(out, "epochs", training.epochs);
  Key(out, "batchSize", training.batch_size);
  out << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  Key(out, "lr", training.optimizer.lr);
  Key(out, "momentum", training.optimizer.momentum);
  Key(out, "nesterov", training.optimizer.nesterov);
  Key(out, "weightDecay", training.optimizer.weight_decay);
  out << YAML::EndMap;
  out << YAML::Key << "schedule" << YAML::Value << YAML::BeginMap;
  Key(out, "type", ToString(training.schedule.type));
  FlowList(out, "milestones", training.schedule.milestones);
  Key(out, "gamma", training.schedule.gamma);
  out << YAML::EndMap;
  Key(out, "precision", ToString(training.precision));
  Key(out, "seed", training.seed);
  out << YAML::EndMap;
}

void EmitPruning(YAML::Emitter& out, const JobSpec& spec) {
  out << YAML::Key << "pruning" << YAML::Value << YAML::BeginMap;
  Key(out, "targetFlopsReduction", spec.pruning.target_flops_reduction);
  Key(out, "layerPruneLimit", spec.pruning.layer_prune_limit);
  Key(out, "costWeighting", spec.pruning.cost_weighting);
  FlowList(out, "ignoredLayers", spec.pruning.ignored_layers);
  Key(out, "roundTo", spec.pruning.round_to);
  out << YAML::EndMap;
  out << YAML::Key << "regularization" << YAML::Value << YAML::BeginMap;
  Key(out, "mode", ToString(spec.regularization.mode));
  Key(out, "lambda", spec.regularization.lambda);
  Key(out, "lambdaDelta", spec.regularization.lambda_delta);
  Key(out, "interval", spec.regularization.interval);
  out << YAML::EndMap;
  const StabilitySpec& s = spec.stability;
  out << YAML::Key << "stability" << YAML::Value << YAML::BeginMap;
  Key(out, "threshold", s.threshold);
  Key(out, "monitorStartEpoch", s.monitor_start_epoch);
  if (s.sparsity_start_epoch) {
    Key(out, "sparsityStartEpoch", *s.sparsity_start_epoch);
  } else {
    Key(out, "sparsityStartEpoch", "auto");
  }
  Key(out, "sparsityEndEpoch", s.sparsity_end_epoch);
  Key(out, "history", s.history);
  Key(out, "window", s.window);
  out << YAML::EndMap;
}

}  // namespace

std::string FormatJobSpecYaml(const JobSpec& spec) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Key(out, "apiVersion", "ocs/v1");
  Key(out, "kind", "PruningJob");
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  Key(out, "name", spec.metadata.name);
  if (!spec.metadata.labels.empty()) Key(out, "labels", spec.metadata.labels);
  out << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  EmitModelAndData(out, spec);
  EmitTraining(out, spec.training);
  EmitPruning(out, spec);
  out << YAML::Key << "resources" << YAML::Value << YAML::BeginMap;
  Key(out, "workers", spec.resources.workers);
  Key(out, "device", ToString(spec.resources.device));
  out << YAML::EndMap;
  out << YAML::Key << "checkpoint" << YAML::Value << YAML::BeginMap;
  Key(out, "everyEpochs", spec.checkpoint.every_epochs);
  out << YAML::EndMap;
  Key(out, "maxRestarts", spec.max_restarts);
  Key(out, "priority", spec.priority);
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace ocs::common
