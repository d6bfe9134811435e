// The typed form of a PruningJob (the YAML a user submits). Every external job spec is parsed and
// validated once, at the edge, by job_spec_parser.h; the rest of ocs trusts these types.
//
// Defaults are the published defaults of OCSPruner for CIFAR (DESIGN.md, "The algorithm").
// Epochs are numbered from 0: a run of `epochs` epochs has epochs 0 .. epochs-1.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ocs::common {

struct JobMetadata {
  std::string name;  // a DNS-1123 label
  std::map<std::string, std::string> labels;
  bool operator==(const JobMetadata&) const = default;
};

struct ModelSpec {
  std::string arch;  // one of KnownArchitectures()
  int num_classes = 10;
  std::vector<int> input_shape = {3, 32, 32};  // C, H, W
  bool operator==(const ModelSpec&) const = default;
};

enum class DatasetKind { kCifar10, kCifar100, kFashionMnist, kMnist, kSynthetic };

// The synthetic set's split sizes when the job sets no limit.
inline constexpr int64_t kSyntheticTrainExamples = 2048;
inline constexpr int64_t kSyntheticTestExamples = 512;

struct DataSpec {
  DatasetKind dataset = DatasetKind::kSynthetic;
  std::string path;         // a folder; may be empty for synthetic and fashion-mnist
  int64_t train_limit = 0;  // 0: the whole training split
  int64_t test_limit = 0;   // 0: the whole test split
  bool augment = true;      // random crop with padding 4, horizontal flip
  bool operator==(const DataSpec&) const = default;
};

struct OptimizerSpec {
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 5.0e-4;
  bool operator==(const OptimizerSpec&) const = default;
};

enum class ScheduleType { kMultiStep, kCosine };

struct ScheduleSpec {
  ScheduleType type = ScheduleType::kMultiStep;
  std::vector<double> milestones = {0.3, 0.6, 0.8, 0.9};  // fractions of the run
  double gamma = 0.2;
  bool operator==(const ScheduleSpec&) const = default;
};

enum class Precision { kFp32, kBf16 };

struct TrainingSpec {
  int epochs = 300;
  int batch_size = 128;  // global, split across ranks
  OptimizerSpec optimizer;
  ScheduleSpec schedule;
  Precision precision = Precision::kFp32;
  uint64_t seed = 1;
  bool operator==(const TrainingSpec&) const = default;
};

struct PruningSpec {
  double target_flops_reduction = 0.5;
  double layer_prune_limit = 0.75;
  bool cost_weighting = true;
  std::vector<std::string> ignored_layers;
  int round_to = 1;
  bool operator==(const PruningSpec&) const = default;
};

// decoupled: the official code's W <- (1 - lambda*lr) W after every step.
// group_lasso: the paper's penalty lambda * sum_c ||W_c||_2.
enum class RegularizationMode { kDecoupled, kGroupLasso };

struct RegularizationSpec {
  RegularizationMode mode = RegularizationMode::kDecoupled;
  double lambda = 1.0e-4;
  double lambda_delta = 1.0e-4;
  int interval = 1;  // epochs between lambda increments
  bool operator==(const RegularizationSpec&) const = default;
};

struct StabilitySpec {
  double threshold = 0.999;
  int monitor_start_epoch = 5;
  // nullopt: "auto", the first epoch > 3 where J̄_t - J̄_(t-2) <= 1e-4.
  std::optional<int> sparsity_start_epoch = 30;
  int sparsity_end_epoch = 130;
  int history = 3;  // masks compared: M_t against M_(t-history+1)
  int window = 3;   // J values averaged into J̄_t
  bool operator==(const StabilitySpec&) const = default;
};

enum class Device { kCuda, kCpu };

struct ResourcesSpec {
  int workers = 2;
  Device device = Device::kCuda;
  bool operator==(const ResourcesSpec&) const = default;
};

struct CheckpointSpec {
  int every_epochs = 10;
  bool operator==(const CheckpointSpec&) const = default;
};

struct JobSpec {
  JobMetadata metadata;
  ModelSpec model;
  DataSpec data;
  TrainingSpec training;
  PruningSpec pruning;
  RegularizationSpec regularization;
  StabilitySpec stability;
  ResourcesSpec resources;
  CheckpointSpec checkpoint;
  int max_restarts = 3;
  // Scheduling order: higher first; first come, first served within one priority.
  int priority = 0;
  bool operator==(const JobSpec&) const = default;
};

// The spellings used in the YAML for each enum; the parser and the emitter share them.
const char* ToString(DatasetKind kind);
const char* ToString(ScheduleType type);
const char* ToString(Precision precision);
const char* ToString(RegularizationMode mode);
const char* ToString(Device device);

// Architectures the model zoo builds (lowercase, e.g. "resnet56").
const std::vector<std::string>& KnownArchitectures();

}  // namespace ocs::common
