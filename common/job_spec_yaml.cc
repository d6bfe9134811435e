// The PruningJob schema: which fields exist, their types and ranges, and the rules that tie
// fields together. Reading is done by SpecReader, which collects every problem.
#include "common/job_spec_yaml.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/spec_reader.h"
#include "common/utf8.h"

namespace ocs::common {
namespace {

using Field = SpecReader::Field;

constexpr char kApiVersion[] = "ocs/v1";
constexpr char kKind[] = "PruningJob";
constexpr char kDebianFashionMnist[] = "/usr/share/datasets/fashion-mnist";

template <typename Enum>
std::vector<std::pair<std::string, Enum>> Choices(std::initializer_list<Enum> values) {
  std::vector<std::pair<std::string, Enum>> choices;
  for (Enum value : values) choices.emplace_back(ToString(value), value);
  return choices;
}

// Kubernetes' DNS-1123 label: what a job name must be to become a pod or metric label.
bool IsDns1123Label(const std::string& name) {
  static const std::regex kLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return name.size() <= 63 && std::regex_match(name, kLabel);
}

// Kubernetes label keys ([prefix/]name) and values.
bool IsLabelName(const std::string& text) {
  static const std::regex kName("([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?");
  return text.size() <= 63 && std::regex_match(text, kName);
}
bool IsLabelKey(const std::string& key) {
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return !key.empty() && IsLabelName(key);
  const std::string prefix = key.substr(0, slash), name = key.substr(slash + 1);
  static const std::regex kDnsSubdomain("[a-z0-9]([-a-z0-9.]*[a-z0-9])?");
  return prefix.size() <= 253 && std::regex_match(prefix, kDnsSubdomain) && !name.empty() &&
         IsLabelName(name);
}

std::string Interval(double lo, double hi, bool lo_open, bool hi_open) {
  return absl::StrCat("must be in ", lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]");
}

class JobSpecSchema {
 public:
  explicit JobSpecSchema(std::vector<SpecError>* errors) : reader_(errors) {}

  JobSpec Read(const YAML::Node& document) {
    JobSpec spec;
    const Field root = SpecReader::Root(document);
    if (!reader_.ExpectMapping(root, {"apiVersion", "kind", "metadata", "spec"})) return spec;
    ReadHeader(root);
    ReadMetadata(SpecReader::Child(root, "metadata"), &spec.metadata);
    const Field body = SpecReader::Child(root, "spec");
    if (!reader_.Require(body)) return spec;
    if (!reader_.ExpectMapping(
            body, {"model", "data", "training", "pruning", "regularization", "stability",
                   "resources", "checkpoint", "maxRestarts", "priority"})) {
      return spec;
    }
    ReadModel(SpecReader::Child(body, "model"), &spec.model);
    ReadData(SpecReader::Child(body, "data"), &spec.data);
    ReadTraining(SpecReader::Child(body, "training"), &spec.training);
    ReadPruning(SpecReader::Child(body, "pruning"), &spec.pruning);
    ReadRegularization(SpecReader::Child(body, "regularization"), &spec.regularization);
    ReadStability(SpecReader::Child(body, "stability"), &spec.stability);
    ReadResources(SpecReader::Child(body, "resources"), &spec.resources);
    ReadCheckpoint(SpecReader::Child(body, "checkpoint"), &spec.checkpoint);
    const Field max_restarts = SpecReader::Child(body, "maxRestarts");
    if (reader_.ReadInt(max_restarts, &spec.max_restarts)) {
      reader_.Check(max_restarts, spec.max_restarts >= 0 && spec.max_restarts <= 100,
                    "must be in [0, 100]");
    }
    const Field priority = SpecReader::Child(body, "priority");
    if (reader_.ReadInt(priority, &spec.priority)) {
      reader_.Check(priority, spec.priority >= 0 && spec.priority <= 1000, "must be in [0, 1000]");
    }
    CheckConsistency(body, spec);
    return spec;
  }

 private:
  // An optional section: absent is fine (all defaults), anything else must be a mapping.
  bool Section(const Field& field, const std::vector<std::string>& keys) {
    return field.present() && reader_.ExpectMapping(field, keys);
  }

  void ReadHeader(const Field& root) {
    std::string text;
    const Field api = SpecReader::Child(root, "apiVersion");
    if (reader_.Require(api) && reader_.ReadString(api, &text)) {
      reader_.Check(api, text == kApiVersion, absl::StrCat("must be \"", kApiVersion, "\""));
    }
    const Field kind = SpecReader::Child(root, "kind");
    if (reader_.Require(kind) && reader_.ReadString(kind, &text)) {
      reader_.Check(kind, text == kKind, absl::StrCat("must be \"", kKind, "\""));
    }
  }

  void ReadMetadata(const Field& field, JobMetadata* out) {
    if (!reader_.Require(field) || !reader_.ExpectMapping(field, {"name", "labels"})) return;
    const Field name = SpecReader::Child(field, "name");
    if (reader_.Require(name) && reader_.ReadString(name, &out->name)) {
      reader_.Check(name, IsDns1123Label(out->name),
                    "must be a DNS-1123 label (at most 63 characters of a-z, 0-9 and '-', "
                    "starting and ending with a letter or digit)");
    }
    const Field labels = SpecReader::Child(field, "labels");
    if (!reader_.ReadStringMap(labels, &out->labels)) return;
    for (const auto& [key, value] : out->labels) {
      const Field label = SpecReader::Child(labels, key);
      reader_.Check(label, IsLabelKey(key),
                    absl::StrCat("label key \"", key,
                                 "\" must be [prefix/]name with a name of at "
                                 "most 63 characters of letters, digits, '-', '_', '.'"));
      reader_.Check(label, IsLabelName(value),
                    "label values must be at most 63 characters of letters, digits, '-', '_', "
                    "'.', starting and ending with a letter or digit");
    }
  }

  void ReadModel(const Field& field, ModelSpec* out) {
    if (!reader_.Require(field) ||
        !reader_.ExpectMapping(field, {"arch", "numClasses", "inputShape"})) {
      return;
    }
    const Field arch = SpecReader::Child(field, "arch");
    if (reader_.Require(arch) && reader_.ReadString(arch, &out->arch)) {
      const auto& known = KnownArchitectures();
      if (std::find(known.begin(), known.end(), out->arch) == known.end()) {
        reader_.ReportChoice(arch, out->arch, known);
      }
    }
    const Field classes = SpecReader::Child(field, "numClasses");
    if (reader_.ReadInt(classes, &out->num_classes)) {
      reader_.Check(classes, out->num_classes >= 2 && out->num_classes <= 100000,
                    "must be in [2, 100000]");
    }
    const Field shape = SpecReader::Child(field, "inputShape");
    if (reader_.ReadIntList(shape, &out->input_shape)) {
      const auto& s = out->input_shape;
      reader_.Check(shape,
                    s.size() == 3 && s[0] >= 1 && s[0] <= 1024 && s[1] >= 1 && s[1] <= 8192 &&
                        s[2] >= 1 && s[2] <= 8192,
                    "must be [channels, height, width] with channels in [1, 1024] and height, "
                    "width in [1, 8192]");
    }
  }

  void ReadData(const Field& field, DataSpec* out) {
    if (!reader_.Require(field) ||
        !reader_.ExpectMapping(field, {"dataset", "path", "trainLimit", "testLimit", "augment"})) {
      return;
    }
    const Field dataset = SpecReader::Child(field, "dataset");
    if (reader_.Require(dataset)) {
      reader_.ReadEnum(
          dataset,
          Choices({DatasetKind::kCifar10, DatasetKind::kCifar100, DatasetKind::kFashionMnist,
                   DatasetKind::kMnist, DatasetKind::kSynthetic}),
          &out->dataset);
    }
    const Field path = SpecReader::Child(field, "path");
    reader_.ReadString(path, &out->path);
    if (out->path.empty() && out->dataset == DatasetKind::kFashionMnist) {
      out->path = kDebianFashionMnist;  // Debian's dataset-fashion-mnist package
    }
    const bool needs_path =
        out->dataset != DatasetKind::kSynthetic && out->dataset != DatasetKind::kFashionMnist;
    if (needs_path && out->path.empty()) {
      reader_.Report(path, absl::StrCat("is required for dataset ", ToString(out->dataset)));
    }
    for (auto [key, limit] :
         {std::pair{"trainLimit", &out->train_limit}, std::pair{"testLimit", &out->test_limit}}) {
      const Field f = SpecReader::Child(field, key);
      if (reader_.ReadInt64(f, limit)) {
        reader_.Check(f, *limit >= 0, "must be >= 0 (0 takes the whole split)");
      }
    }
    reader_.ReadBool(SpecReader::Child(field, "augment"), &out->augment);
  }

  void ReadTraining(const Field& field, TrainingSpec* out) {
    if (!Section(field, {"epochs", "batchSize", "optimizer", "schedule", "precision", "seed"})) {
      return;
    }
    const Field epochs = SpecReader::Child(field, "epochs");
    if (reader_.ReadInt(epochs, &out->epochs)) {
      reader_.Check(epochs, out->epochs >= 1 && out->epochs <= 100000, "must be in [1, 100000]");
    }
    const Field batch = SpecReader::Child(field, "batchSize");
    if (reader_.ReadInt(batch, &out->batch_size)) {
      reader_.Check(batch, out->batch_size >= 1 && out->batch_size <= (1 << 20),
                    "must be in [1, 1048576]");
    }
    ReadOptimizer(SpecReader::Child(field, "optimizer"), &out->optimizer);
    ReadSchedule(SpecReader::Child(field, "schedule"), &out->schedule);
    reader_.ReadEnum(SpecReader::Child(field, "precision"),
                     Choices({Precision::kFp32, Precision::kBf16}), &out->precision);
    reader_.ReadUint64(SpecReader::Child(field, "seed"), &out->seed);
  }

  void ReadOptimizer(const Field& field, OptimizerSpec* out) {
    if (!Section(field, {"lr", "momentum", "nesterov", "weightDecay"})) return;
    const Field lr = SpecReader::Child(field, "lr");
    if (reader_.ReadDouble(lr, &out->lr)) {
      reader_.Check(lr, out->lr > 0 && out->lr <= 10, Interval(0, 10, true, false));
    }
    const Field momentum = SpecReader::Child(field, "momentum");
    if (reader_.ReadDouble(momentum, &out->momentum)) {
      reader_.Check(momentum, out->momentum >= 0 && out->momentum < 1, Interval(0, 1, false, true));
    }
    reader_.ReadBool(SpecReader::Child(field, "nesterov"), &out->nesterov);
    const Field decay = SpecReader::Child(field, "weightDecay");
    if (reader_.ReadDouble(decay, &out->weight_decay)) {
      reader_.Check(decay, out->weight_decay >= 0 && out->weight_decay < 1,
                    Interval(0, 1, false, true));
    }
  }

  void ReadSchedule(const Field& field, ScheduleSpec* out) {
    if (!Section(field, {"type", "milestones", "gamma"})) return;
    reader_.ReadEnum(SpecReader::Child(field, "type"),
                     Choices({ScheduleType::kMultiStep, ScheduleType::kCosine}), &out->type);
    const Field milestones = SpecReader::Child(field, "milestones");
    if (reader_.ReadDoubleList(milestones, &out->milestones)) {
      const auto& m = out->milestones;
      bool ok = true;
      for (size_t i = 0; i < m.size(); ++i) {
        ok = ok && m[i] > 0 && m[i] < 1 && (i == 0 || m[i] > m[i - 1]);
      }
      reader_.Check(milestones, ok,
                    "must be strictly increasing fractions of the run, each in (0, 1)");
    }
    const Field gamma = SpecReader::Child(field, "gamma");
    if (reader_.ReadDouble(gamma, &out->gamma)) {
      reader_.Check(gamma, out->gamma > 0 && out->gamma <= 1, Interval(0, 1, true, false));
    }
  }

  void ReadPruning(const Field& field, PruningSpec* out) {
    if (!Section(field, {"targetFlopsReduction", "layerPruneLimit", "costWeighting",
                         "ignoredLayers", "roundTo"})) {
      return;
    }
    const Field target = SpecReader::Child(field, "targetFlopsReduction");
    if (reader_.ReadDouble(target, &out->target_flops_reduction)) {
      reader_.Check(target, out->target_flops_reduction > 0 && out->target_flops_reduction < 1,
                    Interval(0, 1, true, true));
    }
    const Field limit = SpecReader::Child(field, "layerPruneLimit");
    if (reader_.ReadDouble(limit, &out->layer_prune_limit)) {
      reader_.Check(limit, out->layer_prune_limit >= 0 && out->layer_prune_limit <= 1,
                    Interval(0, 1, false, false));
    }
    reader_.ReadBool(SpecReader::Child(field, "costWeighting"), &out->cost_weighting);
    const Field ignored = SpecReader::Child(field, "ignoredLayers");
    if (reader_.ReadStringList(ignored, &out->ignored_layers)) {
      for (const std::string& name : out->ignored_layers) {
        if (name.empty()) reader_.Report(ignored, "layer names must not be empty");
      }
    }
    const Field round = SpecReader::Child(field, "roundTo");
    if (reader_.ReadInt(round, &out->round_to)) {
      reader_.Check(round, out->round_to >= 1 && out->round_to <= 1024, "must be in [1, 1024]");
    }
  }

  void ReadRegularization(const Field& field, RegularizationSpec* out) {
    if (!Section(field, {"mode", "lambda", "lambdaDelta", "interval"})) return;
    reader_.ReadEnum(SpecReader::Child(field, "mode"),
                     Choices({RegularizationMode::kDecoupled, RegularizationMode::kGroupLasso}),
                     &out->mode);
    for (auto [key, value] :
         {std::pair{"lambda", &out->lambda}, std::pair{"lambdaDelta", &out->lambda_delta}}) {
      const Field f = SpecReader::Child(field, key);
      if (reader_.ReadDouble(f, value)) {
        reader_.Check(f, *value >= 0 && *value <= 1, Interval(0, 1, false, false));
      }
    }
    const Field interval = SpecReader::Child(field, "interval");
    if (reader_.ReadInt(interval, &out->interval)) {
      reader_.Check(interval, out->interval >= 1, "must be >= 1");
    }
  }

  void ReadStability(const Field& field, StabilitySpec* out) {
    if (!Section(field, {"threshold", "monitorStartEpoch", "sparsityStartEpoch", "sparsityEndEpoch",
                         "history", "window"})) {
      return;
    }
    const Field threshold = SpecReader::Child(field, "threshold");
    if (reader_.ReadDouble(threshold, &out->threshold)) {
      reader_.Check(threshold, out->threshold > 0 && out->threshold <= 1,
                    Interval(0, 1, true, false));
    }
    const Field monitor = SpecReader::Child(field, "monitorStartEpoch");
    if (reader_.ReadInt(monitor, &out->monitor_start_epoch)) {
      reader_.Check(monitor, out->monitor_start_epoch >= 0, "must be >= 0");
    }
    ReadSparsityStart(SpecReader::Child(field, "sparsityStartEpoch"), out);
    const Field end = SpecReader::Child(field, "sparsityEndEpoch");
    if (reader_.ReadInt(end, &out->sparsity_end_epoch)) {
      reader_.Check(end, out->sparsity_end_epoch >= 1, "must be >= 1");
    }
    const Field history = SpecReader::Child(field, "history");
    if (reader_.ReadInt(history, &out->history)) {
      reader_.Check(history, out->history >= 2 && out->history <= 100, "must be in [2, 100]");
    }
    const Field window = SpecReader::Child(field, "window");
    if (reader_.ReadInt(window, &out->window)) {
      reader_.Check(window, out->window >= 1 && out->window <= 100, "must be in [1, 100]");
    }
  }

  // An epoch number, or the word "auto".
  void ReadSparsityStart(const Field& field, StabilitySpec* out) {
    if (!field.present()) return;
    if (field.node.IsScalar() && field.node.Scalar() == "auto") {
      out->sparsity_start_epoch.reset();
      return;
    }
    int epoch = 0;
    if (!field.node.IsScalar() || !YAML::convert<int>::decode(field.node, epoch)) {
      reader_.Report(field, absl::StrCat("must be an epoch number or \"auto\", got ",
                                         SpecReader::Describe(field)));
      return;
    }
    if (reader_.Check(field, epoch >= 0, "must be >= 0")) out->sparsity_start_epoch = epoch;
  }

  void ReadResources(const Field& field, ResourcesSpec* out) {
    if (!Section(field, {"workers", "device"})) return;
    const Field workers = SpecReader::Child(field, "workers");
    if (reader_.ReadInt(workers, &out->workers)) {
      reader_.Check(workers, out->workers >= 1 && out->workers <= 1024, "must be in [1, 1024]");
    }
    reader_.ReadEnum(SpecReader::Child(field, "device"), Choices({Device::kCuda, Device::kCpu}),
                     &out->device);
  }

  void ReadCheckpoint(const Field& field, CheckpointSpec* out) {
    if (!Section(field, {"everyEpochs"})) return;
    const Field every = SpecReader::Child(field, "everyEpochs");
    if (reader_.ReadInt(every, &out->every_epochs)) {
      reader_.Check(every, out->every_epochs >= 0, "must be >= 0 (0: no checkpoints)");
    }
  }

  // Rules that tie fields of different sections together. Each is reported at the field that a
  // user most likely has to change, naming the other field and its value; a rule whose inputs
  // already have errors is skipped.
  void CheckConsistency(const Field& body, const JobSpec& spec) {
    const Field stability = SpecReader::Child(body, "stability");
    const Field epochs = SpecReader::Child(SpecReader::Child(body, "training"), "epochs");
    const Field monitor = SpecReader::Child(stability, "monitorStartEpoch");
    const Field start = SpecReader::Child(stability, "sparsityStartEpoch");
    const Field end = SpecReader::Child(stability, "sparsityEndEpoch");
    const StabilitySpec& s = spec.stability;
    if (reader_.IsClean(epochs)) {
      // The prune is forced at the start of that epoch, so the run must still have it.
      reader_.Check(end, s.sparsity_end_epoch < spec.training.epochs,
                    absl::StrCat("must be < spec.training.epochs (", spec.training.epochs,
                                 "): the prune is forced at the start of that epoch"),
                    Shown(end, s.sparsity_end_epoch));
    }
    if (reader_.IsClean(end)) {
      reader_.Check(
          monitor, s.monitor_start_epoch < s.sparsity_end_epoch,
          absl::StrCat("must be < spec.stability.sparsityEndEpoch (", s.sparsity_end_epoch, ")"),
          Shown(monitor, s.monitor_start_epoch));
    }
    if (s.sparsity_start_epoch && reader_.IsClean(monitor) && reader_.IsClean(end)) {
      reader_.Check(
          start, *s.sparsity_start_epoch >= s.monitor_start_epoch,
          absl::StrCat("must be >= spec.stability.monitorStartEpoch (", s.monitor_start_epoch,
                       "): the channels to regularize come from "
                       "the monitored mask"),
          Shown(start, *s.sparsity_start_epoch));
      reader_.Check(
          start, *s.sparsity_start_epoch < s.sparsity_end_epoch,
          absl::StrCat("must be < spec.stability.sparsityEndEpoch (", s.sparsity_end_epoch, ")"),
          Shown(start, *s.sparsity_start_epoch));
    }
    const Field batch = SpecReader::Child(SpecReader::Child(body, "training"), "batchSize");
    const Field workers = SpecReader::Child(SpecReader::Child(body, "resources"), "workers");
    if (reader_.IsClean(workers)) {
      reader_.Check(batch, spec.training.batch_size % spec.resources.workers == 0,
                    absl::StrCat("must be divisible by spec.resources.workers (",
                                 spec.resources.workers, "): the global batch is split evenly"),
                    Shown(batch, spec.training.batch_size));
    }
    if (reader_.IsClean(SpecReader::Child(SpecReader::Child(body, "data"), "dataset"))) {
      CheckDatasetShape(SpecReader::Child(body, "model"), spec);
    }
    const Field input_shape = SpecReader::Child(SpecReader::Child(body, "model"), "inputShape");
    if (spec.data.dataset == DatasetKind::kSynthetic && reader_.IsClean(input_shape)) {
      CheckSyntheticSize(SpecReader::Child(body, "data"), input_shape, spec);
    }
  }

  // A synthetic set is generated in every rank's memory, one byte per pixel (and a few times
  // that while it is made): a limit that cannot fit is a spec error, not an abort at run time.
  void CheckSyntheticSize(const Field& data, const Field& input_shape, const JobSpec& spec) {
    constexpr int64_t kMaxSyntheticPixels = int64_t{1} << 30;
    const auto& s = spec.model.input_shape;
    const int64_t pixels = int64_t{s[0]} * s[1] * s[2];
    const int64_t max_examples = kMaxSyntheticPixels / pixels;
    if (!reader_.Check(input_shape, max_examples > 0,
                       "must have at most 2^30 pixels for a synthetic set")) {
      return;
    }
    for (auto [key, limit, default_size] :
         {std::tuple{"trainLimit", spec.data.train_limit, kSyntheticTrainExamples},
          std::tuple{"testLimit", spec.data.test_limit, kSyntheticTestExamples}}) {
      const Field field = SpecReader::Child(data, key);
      const int64_t examples = limit > 0 ? limit : default_size;
      reader_.Check(field, examples <= max_examples,
                    absl::StrCat("must be in [1, ", max_examples,
                                 "] for a synthetic set of this inputShape: at most 2^30 pixels "
                                 "are generated per split"),
                    field.present() ? "" : absl::StrCat(examples, " (the default)"));
    }
  }

  // A value as a message shows it: as written, or "130 (the default)" when the field is absent.
  static std::string Shown(const Field& field, int value) {
    return field.present() ? SpecReader::Describe(field) : absl::StrCat(value, " (the default)");
  }

  // The fixed-format datasets decide the input shape and the number of classes.
  void CheckDatasetShape(const Field& model, const JobSpec& spec) {
    std::vector<int> shape;
    std::vector<int> classes;
    switch (spec.data.dataset) {
      case DatasetKind::kCifar10:
        shape = {3, 32, 32}, classes = {10};
        break;
      case DatasetKind::kCifar100:
        shape = {3, 32, 32}, classes = {100, 20};  // fine or coarse labels
        break;
      case DatasetKind::kFashionMnist:
      case DatasetKind::kMnist:
        shape = {1, 28, 28}, classes = {10};
        break;
      case DatasetKind::kSynthetic:
        return;
    }
    const char* dataset = ToString(spec.data.dataset);
    const Field input_shape = SpecReader::Child(model, "inputShape");
    reader_.Check(
        input_shape, spec.model.input_shape == shape,
        absl::StrCat("must be [", absl::StrJoin(shape, ", "), "] for dataset ", dataset),
        input_shape.present()
            ? absl::StrCat("[", absl::StrJoin(spec.model.input_shape, ", "), "]")
            : absl::StrCat("[", absl::StrJoin(spec.model.input_shape, ", "), "] (the default)"));
    const Field num_classes = SpecReader::Child(model, "numClasses");
    reader_.Check(
        num_classes,
        std::find(classes.begin(), classes.end(), spec.model.num_classes) != classes.end(),
        absl::StrCat("must be ", absl::StrJoin(classes, " or "), " for dataset ", dataset),
        Shown(num_classes, spec.model.num_classes));
  }

  SpecReader reader_;
};

// How many YAML documents the text holds, from its markers: a "---" line after content starts
// another one (YAML forbids such a line inside a document), as does content after a "..." line.
// Not YAML::LoadAll: yaml-cpp 0.7's loops forever on some junk after a first document (found by
// fuzz/job_spec_fuzzer).
int CountDocuments(absl::string_view text) {
  auto is_content = [](absl::string_view part) {
    part = absl::StripAsciiWhitespace(part);
    return !part.empty() && part[0] != '#';
  };
  auto marker = [](absl::string_view line, absl::string_view mark) {
    return absl::StartsWith(line, mark) && (line.size() == 3 || absl::ascii_isspace(line[3]));
  };
  int documents = 0;
  bool open = false;  // the current document has content
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (marker(line, "---") || marker(line, "...")) {
      if (open) ++documents;
      open = marker(line, "---") && is_content(line.substr(3));  // "--- {a: 1}"
    } else if (is_content(line) && absl::StripAsciiWhitespace(line)[0] != '%') {
      open = true;  // '%' starts a directive, which precedes a document
    }
  }
  return documents + (open ? 1 : 0);
}

}  // namespace

absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view yaml_text, absl::string_view source,
                                     std::vector<SpecError>* errors) {
  std::vector<SpecError> found;
  JobSpec spec;
  if (yaml_text.size() > kMaxJobSpecBytes) {
    found.push_back({"", absl::StrCat("is ", yaml_text.size(), " bytes; a job spec may be at most ",
                                      kMaxJobSpecBytes)});
  } else if (const std::optional<size_t> bad = FirstInvalidUtf8Byte(yaml_text)) {
    // YAML is Unicode text, and the spec travels in protobuf strings, which must be UTF-8.
    const absl::string_view before = yaml_text.substr(0, *bad);
    const size_t line_start = before.rfind('\n') + 1;  // npos + 1 == 0 on the first line
    found.push_back(
        {"", absl::StrCat("is not UTF-8 text: byte ", *bad, " is not part of a UTF-8 character"),
         static_cast<int>(std::count(before.begin(), before.end(), '\n')) + 1,
         static_cast<int>(*bad - line_start) + 1});
  } else {
    try {
      // Silently reading the first of several documents would submit something other than the
      // file.
      if (const int documents = CountDocuments(yaml_text); documents > 1) {
        found.push_back(
            {"", absl::StrCat("holds ", documents, " YAML documents; a job spec is exactly one")});
      } else {
        spec = JobSpecSchema(&found).Read(YAML::Load(std::string(yaml_text)));
      }
    } catch (const YAML::Exception& e) {
      // Syntax errors, and nesting deeper than yaml-cpp's recursion guard.
      found.push_back({"", absl::StrCat("is not valid YAML: ", ReplaceInvalidUtf8(e.msg)),
                       e.mark.is_null() ? 0 : e.mark.line + 1,
                       e.mark.is_null() ? 0 : e.mark.column + 1});
    }
  }
  // In file order, as a compiler lists them.
  std::stable_sort(found.begin(), found.end(), [](const SpecError& a, const SpecError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  if (errors) *errors = found;
  if (!found.empty()) return SpecErrorsToStatus(found, source);
  return spec;
}

absl::StatusOr<std::string> ReadJobSpecFile(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat("job spec ", path, ": no such file"));
  }
  if (std::filesystem::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat("job spec ", path, ": is a folder, not a file"));
  }
  // Read with a bound rather than trusting the size: a pipe (`<(envsubst < job.yaml)`) has none,
  // and /dev/zero never ends.
  std::ifstream in(path, std::ios::binary);
  std::string text(kMaxJobSpecBytes + 1, '\0');
  if (in) in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in && !in.eof()) {
    return absl::FailedPreconditionError(absl::StrCat("job spec ", path, ": cannot be read"));
  }
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxJobSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("job spec ", path, ": more than ", kMaxJobSpecBytes,
                     " bytes; a job spec may be at most ", kMaxJobSpecBytes));
  }
  return text;
}

absl::StatusOr<JobSpec> LoadJobSpecFile(const std::string& path, std::vector<SpecError>* errors) {
  auto text = ReadJobSpecFile(path);
  if (!text.ok()) return text.status();
  return ParseJobSpec(*text, path, errors);
}

}  // namespace ocs::common
