#include "common/job_spec_yaml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/job_spec_warnings.h"
#include "common/utf8.h"

namespace ocs::common {
namespace {

using ::testing::IsEmpty;

constexpr char kMinimal[] = R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: test-job}
spec:
  model: {arch: resnet20}
  data: {dataset: synthetic}
)";

std::vector<SpecError> ErrorsOf(absl::string_view yaml) {
  std::vector<SpecError> errors;
  auto spec = ParseJobSpec(yaml, "job.yaml", &errors);
  EXPECT_EQ(spec.ok(), errors.empty());
  return errors;
}

// kMinimal with `extra` appended under spec: (indented by the caller).
std::string WithSpec(absl::string_view extra) { return absl::StrCat(kMinimal, extra); }

std::string Describe(const std::vector<SpecError>& errors) {
  std::string text;
  for (const SpecError& e : errors) absl::StrAppend(&text, FormatSpecError(e, "job.yaml"), "\n");
  return text;
}

// The single error for `field`, failing the test when there is not exactly one.
SpecError OnlyErrorFor(const std::vector<SpecError>& errors, absl::string_view field) {
  std::vector<SpecError> matching;
  for (const SpecError& e : errors) {
    if (e.field == field) matching.push_back(e);
  }
  EXPECT_EQ(matching.size(), 1u) << "errors for " << field << " in:\n" << Describe(errors);
  return matching.empty() ? SpecError{} : matching.front();
}

TEST(JobSpecYamlTest, MinimalSpecGetsThePublishedDefaults) {
  auto spec = ParseJobSpec(kMinimal, "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->metadata.name, "test-job");
  EXPECT_EQ(spec->model.arch, "resnet20");
  EXPECT_EQ(spec->model.num_classes, 10);
  EXPECT_EQ(spec->model.input_shape, (std::vector<int>{3, 32, 32}));
  EXPECT_EQ(spec->training.epochs, 300);
  EXPECT_EQ(spec->training.batch_size, 128);
  EXPECT_DOUBLE_EQ(spec->training.optimizer.lr, 0.1);
  EXPECT_DOUBLE_EQ(spec->training.optimizer.momentum, 0.9);
  EXPECT_TRUE(spec->training.optimizer.nesterov);
  EXPECT_DOUBLE_EQ(spec->training.optimizer.weight_decay, 5e-4);
  EXPECT_EQ(spec->training.schedule.type, ScheduleType::kMultiStep);
  EXPECT_EQ(spec->training.schedule.milestones, (std::vector<double>{0.3, 0.6, 0.8, 0.9}));
  EXPECT_DOUBLE_EQ(spec->training.schedule.gamma, 0.2);
  EXPECT_DOUBLE_EQ(spec->pruning.target_flops_reduction, 0.5);
  EXPECT_DOUBLE_EQ(spec->pruning.layer_prune_limit, 0.75);
  EXPECT_EQ(spec->regularization.mode, RegularizationMode::kDecoupled);
  EXPECT_DOUBLE_EQ(spec->regularization.lambda, 1e-4);
  EXPECT_DOUBLE_EQ(spec->stability.threshold, 0.999);
  EXPECT_EQ(spec->stability.monitor_start_epoch, 5);
  EXPECT_EQ(spec->stability.sparsity_start_epoch, 30);
  EXPECT_EQ(spec->stability.sparsity_end_epoch, 130);
  EXPECT_EQ(spec->stability.history, 3);
  EXPECT_EQ(spec->stability.window, 3);
  EXPECT_EQ(spec->resources.workers, 2);
  EXPECT_EQ(spec->resources.device, Device::kCuda);
  EXPECT_EQ(spec->checkpoint.every_epochs, 10);
  EXPECT_EQ(spec->max_restarts, 3);
}

TEST(JobSpecYamlTest, ExamplesAreValidAndRoundTripThroughTheCanonicalForm) {
  for (const char* path :
       {"examples/resnet56-cifar10.yaml", "examples/resnet20-fashion-mnist.yaml"}) {
    auto spec = LoadJobSpecFile(path);
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto again = ParseJobSpec(FormatJobSpecYaml(*spec), "canonical");
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << FormatJobSpecYaml(*spec);
    EXPECT_EQ(*again, *spec) << path;
  }
}

TEST(JobSpecYamlTest, RoundTripKeepsNonDefaultValuesExactly) {
  auto spec = ParseJobSpec(kMinimal, "job.yaml");
  ASSERT_TRUE(spec.ok());
  spec->metadata.labels = {{"team", "vision"}, {"example.com/owner", "a.b-c_d"}};
  spec->training.optimizer.lr = 0.123456789012345;
  spec->training.seed = 18446744073709551615ull;
  spec->stability.sparsity_start_epoch.reset();
  spec->pruning.ignored_layers = {"conv1", "stage_3.2.conv_b"};
  spec->regularization.mode = RegularizationMode::kGroupLasso;
  spec->priority = 700;
  auto again = ParseJobSpec(FormatJobSpecYaml(*spec), "canonical");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *spec);
}

TEST(JobSpecYamlTest, ReportsTheIssuesExampleWithFieldValueAndPosition) {
  const auto errors = ErrorsOf(WithSpec("  pruning: {targetFlopsReduction: 1.5}\n"));
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);
  EXPECT_EQ(FormatSpecError(errors[0], "job.yaml"),
            "spec.pruning.targetFlopsReduction: must be in (0, 1), got 1.5 (job.yaml:7:35)");
}

TEST(JobSpecYamlTest, SeveralDocumentsAreOneProblemNotTheFirstOneSilently) {
  const std::vector<SpecError> errors = ErrorsOf(absl::StrCat(kMinimal, "---\n", kMinimal));
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);
  EXPECT_EQ(errors[0].problem, "holds 2 YAML documents; a job spec is exactly one");
  EXPECT_FALSE(ErrorsOf("").empty());  // and none at all is not a spec either
  // Markers around one document are fine; content after "..." is another document.
  EXPECT_TRUE(ErrorsOf(absl::StrCat("---\n", kMinimal, "...\n# done\n")).empty());
  EXPECT_EQ(ErrorsOf(absl::StrCat(kMinimal, "...\nextra: 1\n")).size(), 1u);
  // Found by fuzz/job_spec_fuzzer: yaml-cpp's LoadAll never returns on these bytes.
  EXPECT_FALSE(ErrorsOf(",\352ust \377\377\377\005g\n").empty());
}

TEST(JobSpecYamlTest, ReportsEveryProblemAtOnce) {
  const auto errors = ErrorsOf(R"(apiVersion: ocs/v2
kind: PruningJob
metadata: {name: Bad_Name}
spec:
  model: {arch: resnet-56, numClasses: 1}
  data: {dataset: cifar10}
  training: {epochs: ten, batchSize: 0, optimizer: {lr: -1}}
  pruning: {targetFlopReduction: 0.5}
)");
  EXPECT_EQ(errors.size(), 9u) << Describe(errors);
  for (const char* field :
       {"apiVersion", "metadata.name", "spec.model.arch", "spec.model.numClasses", "spec.data.path",
        "spec.training.epochs", "spec.training.batchSize", "spec.training.optimizer.lr",
        "spec.pruning.targetFlopReduction"}) {
    OnlyErrorFor(errors, field);
  }
}

TEST(JobSpecYamlTest, RequiredFields) {
  auto errors = ErrorsOf("apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {}\nspec: {}\n");
  EXPECT_EQ(OnlyErrorFor(errors, "metadata.name").problem, "is required");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.model").problem, "is required");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.data").problem, "is required");

  errors = ErrorsOf("metadata: {name: x}\nspec: {model: {numClasses: 10}, data: {path: /d}}\n");
  EXPECT_EQ(OnlyErrorFor(errors, "apiVersion").problem, "is required");
  EXPECT_EQ(OnlyErrorFor(errors, "kind").problem, "is required");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.model.arch").problem, "is required");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.data.dataset").problem, "is required");
}

TEST(JobSpecYamlTest, UnknownFieldsGetASuggestionAndTheirPosition) {
  const auto errors = ErrorsOf(WithSpec("  trainig: {epochs: 10}\n"));
  const SpecError error = OnlyErrorFor(errors, "spec.trainig");
  EXPECT_EQ(error.problem, "unknown field (did you mean \"training\"?)");
  EXPECT_EQ(error.line, 7);
  EXPECT_EQ(error.column, 3);
}

TEST(JobSpecYamlTest, UnknownFieldWithoutCloseMatchListsTheKnownOnes) {
  const auto errors = ErrorsOf(WithSpec("  resources: {gpus: 4}\n"));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.resources.gpus").problem,
            "unknown field (known fields: workers, device)");
}

TEST(JobSpecYamlTest, DuplicateFieldsAreRejected) {
  const auto errors = ErrorsOf(WithSpec("  maxRestarts: 1\n  maxRestarts: 2\n"));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.maxRestarts").problem, "is given more than once");
}

TEST(JobSpecYamlTest, WrongTypes) {
  const auto errors = ErrorsOf(WithSpec(R"(  training:
    epochs: 1.5
    batchSize: [128]
    optimizer: {nesterov: maybe, lr: .nan}
    seed: -1
  pruning: {ignoredLayers: conv1}
  resources: 4
)"));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.epochs").problem, "must be an integer, got 1.5");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.batchSize").problem,
            "must be an integer, got a list");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.optimizer.nesterov").problem,
            "must be true or false, got maybe");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.optimizer.lr").problem,
            "must be a finite number, got .nan");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.seed").problem,
            "must be a non-negative integer, got -1");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.pruning.ignoredLayers").problem,
            "must be a list, got conv1");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.resources").problem, "must be a mapping, got 4");
}

TEST(JobSpecYamlTest, OutOfRangeValues) {
  const auto errors = ErrorsOf(WithSpec(R"(  training:
    epochs: 0
    optimizer: {momentum: 1.0, weightDecay: -0.1}
    schedule: {milestones: [0.6, 0.3], gamma: 0}
  pruning: {layerPruneLimit: 1.2, roundTo: 0}
  regularization: {lambda: -1, interval: 0}
  stability: {threshold: 0, history: 1, window: 0}
  resources: {workers: 0}
  maxRestarts: -1
  priority: 1001
)"));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.epochs").problem, "must be in [1, 100000], got 0");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.optimizer.momentum").problem,
            "must be in [0, 1), got 1.0");
  OnlyErrorFor(errors, "spec.training.optimizer.weightDecay");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.training.schedule.milestones").problem,
            "must be strictly increasing fractions of the run, each in (0, 1), got a list");
  OnlyErrorFor(errors, "spec.training.schedule.gamma");
  OnlyErrorFor(errors, "spec.pruning.layerPruneLimit");
  OnlyErrorFor(errors, "spec.pruning.roundTo");
  OnlyErrorFor(errors, "spec.regularization.lambda");
  OnlyErrorFor(errors, "spec.regularization.interval");
  OnlyErrorFor(errors, "spec.stability.threshold");
  OnlyErrorFor(errors, "spec.stability.history");
  OnlyErrorFor(errors, "spec.stability.window");
  OnlyErrorFor(errors, "spec.resources.workers");
  OnlyErrorFor(errors, "spec.maxRestarts");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.priority").problem, "must be in [0, 1000], got 1001");
}

TEST(JobSpecYamlTest, EpochsMustBeConsistent) {
  // monitor start < sparsity end < epochs, and sparsity start in [monitor start, sparsity end).
  auto errors = ErrorsOf(WithSpec("  training: {epochs: 100}\n"));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.stability.sparsityEndEpoch").problem,
            "must be < spec.training.epochs (100): the prune is forced at the start of that epoch, "
            "got 130 (the default)");

  errors = ErrorsOf(WithSpec(
      "  training: {epochs: 20}\n"
      "  stability: {monitorStartEpoch: 12, sparsityStartEpoch: 3, sparsityEndEpoch: 10}\n"));
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);  // start is not judged against a bad monitor
  EXPECT_EQ(OnlyErrorFor(errors, "spec.stability.monitorStartEpoch").problem,
            "must be < spec.stability.sparsityEndEpoch (10), got 12");

  errors = ErrorsOf(WithSpec(
      "  training: {epochs: 20}\n"
      "  stability: {monitorStartEpoch: 5, sparsityStartEpoch: 3, sparsityEndEpoch: 10}\n"));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.stability.sparsityStartEpoch").problem,
              ::testing::StartsWith("must be >= spec.stability.monitorStartEpoch (5)"));

  errors = ErrorsOf(WithSpec(
      "  training: {epochs: 20}\n"
      "  stability: {monitorStartEpoch: 1, sparsityStartEpoch: 15, sparsityEndEpoch: 10}\n"));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.stability.sparsityStartEpoch").problem,
            "must be < spec.stability.sparsityEndEpoch (10), got 15");

  // The prune is forced at the start of epoch sparsityEndEpoch, so a run of 20 epochs (0-19)
  // must end the sparsity phase by epoch 19 or it is never pruned.
  EXPECT_EQ(OnlyErrorFor(ErrorsOf(WithSpec("  training: {epochs: 20}\n"
                                           "  stability: {monitorStartEpoch: 1, "
                                           "sparsityEndEpoch: 20}\n")),
                         "spec.stability.sparsityEndEpoch")
                .problem,
            "must be < spec.training.epochs (20): the prune is forced at the start of that "
            "epoch, got 20");
  EXPECT_THAT(ErrorsOf(WithSpec("  training: {epochs: 20}\n"
                                "  stability: {monitorStartEpoch: 1, sparsityStartEpoch: 2, "
                                "sparsityEndEpoch: 19}\n")),
              IsEmpty());
}

TEST(JobSpecYamlTest, SparsityStartMayBeAuto) {
  auto spec = ParseJobSpec(WithSpec("  stability: {sparsityStartEpoch: auto}\n"), "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->stability.sparsity_start_epoch, std::nullopt);
  const auto errors = ErrorsOf(WithSpec("  stability: {sparsityStartEpoch: soon}\n"));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.stability.sparsityStartEpoch").problem,
            "must be an epoch number or \"auto\", got soon");
}

TEST(JobSpecYamlTest, UnknownArchitectureAndEnumValuesGetSuggestions) {
  const std::string yaml = absl::StrReplaceAll(
      WithSpec("  training: {precision: bf61, schedule: {type: cosin}}\n"
               "  regularization: {mode: group-lasso}\n  resources: {device: gpu}\n"),
      {{"arch: resnet20", "arch: resnet-56"}, {"dataset: synthetic", "dataset: cifar-10"}});
  const auto errors = ErrorsOf(yaml);
  EXPECT_THAT(OnlyErrorFor(errors, "spec.model.arch").problem,
              ::testing::StartsWith("unknown value \"resnet-56\" (did you mean \"resnet56\"?); "
                                    "one of: vgg11, vgg13"));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.data.dataset").problem,
              ::testing::HasSubstr("did you mean \"cifar10\"?"));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.training.precision").problem,
              ::testing::HasSubstr("did you mean \"bf16\"?"));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.training.schedule.type").problem,
              ::testing::HasSubstr("did you mean \"cosine\"?"));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.regularization.mode").problem,
              ::testing::HasSubstr("did you mean \"groupLasso\"?"));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.resources.device").problem,
              ::testing::EndsWith("; one of: cuda, cpu"));
}

TEST(JobSpecYamlTest, NameMustBeADns1123Label) {
  for (const char* bad : {"Upper", "under_score", "-lead", "trail-", "\"\"",
                          "a23456789012345678901234567890123456789012345678901234567890123x"}) {
    const auto errors = ErrorsOf(absl::StrReplaceAll(kMinimal, {{"test-job", bad}}));
    EXPECT_THAT(OnlyErrorFor(errors, "metadata.name").problem,
                ::testing::StartsWith("must be a DNS-1123 label"))
        << bad;
  }
  for (const char* good : {"a", "job-1", "0abc", "resnet56-cifar10"}) {
    EXPECT_THAT(ErrorsOf(absl::StrReplaceAll(kMinimal, {{"test-job", good}})), IsEmpty()) << good;
  }
}

TEST(JobSpecYamlTest, LabelsFollowKubernetesRules) {
  const std::string yaml = absl::StrReplaceAll(
      kMinimal, {{"{name: test-job}",
                  "{name: test-job, labels: {team: vision, \"bad key!\": x, ok: \"bad value!\", "
                  "nested: {a: b}}}"}});
  const auto errors = ErrorsOf(yaml);
  EXPECT_EQ(errors.size(), 1u) << Describe(errors);  // a nested mapping stops the label check
  EXPECT_THAT(OnlyErrorFor(errors, "metadata.labels.nested").problem,
              ::testing::StartsWith("must be a string"));
  const auto errors2 = ErrorsOf(absl::StrReplaceAll(
      kMinimal,
      {{"{name: test-job}", "{name: test-job, labels: {\"bad key!\": x, ok: \"bad value!\"}}"}}));
  EXPECT_THAT(OnlyErrorFor(errors2, "metadata.labels.bad key!").problem,
              ::testing::HasSubstr("label key"));
  EXPECT_THAT(OnlyErrorFor(errors2, "metadata.labels.ok").problem,
              ::testing::HasSubstr("label values"));
}

TEST(JobSpecYamlTest, ANullLabelKeyIsAnErrorNotADroppedMapping) {
  const auto errors = ErrorsOf(absl::StrReplaceAll(
      kMinimal, {{"{name: test-job}", "{name: test-job, labels: {~: x, team: demo}}"}}));
  EXPECT_EQ(OnlyErrorFor(errors, "metadata.labels").problem, "keys must be strings, got null");
}

TEST(JobSpecYamlTest, IntegersAreDecimal) {
  // yaml-cpp alone reads 014 as octal 12 and 0xE as 14; YAML 1.2 and a reader see 14 and text.
  auto spec = ParseJobSpec(
      WithSpec("  training: {epochs: 014}\n  stability: "
               "{monitorStartEpoch: 1, sparsityStartEpoch: 2, sparsityEndEpoch: +8}\n"),
      "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->training.epochs, 14);
  EXPECT_EQ(spec->stability.sparsity_end_epoch, 8);
  EXPECT_EQ(OnlyErrorFor(ErrorsOf(WithSpec("  training: {epochs: 0xE}\n")), "spec.training.epochs")
                .problem,
            "must be an integer, got 0xE");
  EXPECT_EQ(OnlyErrorFor(ErrorsOf(WithSpec("  training: {epochs: 99999999999}\n")),
                         "spec.training.epochs")
                .problem,
            "is out of range, got 99999999999");
  EXPECT_EQ(
      OnlyErrorFor(ErrorsOf(WithSpec("  training: {seed: -1}\n")), "spec.training.seed").problem,
      "must be a non-negative integer, got -1");
}

TEST(JobSpecYamlTest, SyntheticSetsMustFitInMemory) {
  // 2^30 pixels per split: 349,525 examples of 3x32x32.
  auto errors = ErrorsOf(absl::StrReplaceAll(
      kMinimal, {{"{dataset: synthetic}", "{dataset: synthetic, trainLimit: 100000000000000}"}}));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.data.trainLimit").problem,
            "must be in [1, 349525] for a synthetic set of this inputShape: at most 2^30 pixels "
            "are generated per split, got 100000000000000");
  errors = ErrorsOf(absl::StrReplaceAll(
      kMinimal, {{"{arch: resnet20}", "{arch: resnet20, inputShape: [3, 4096, 4096]}"}}));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.data.testLimit").problem,
              ::testing::EndsWith("got 512 (the default)"));
  EXPECT_EQ(
      OnlyErrorFor(
          ErrorsOf(absl::StrReplaceAll(
              kMinimal, {{"{arch: resnet20}", "{arch: resnet20, inputShape: [64, 8192, 8192]}"}})),
          "spec.model.inputShape")
          .problem,
      "must have at most 2^30 pixels for a synthetic set, got a list");
}

TEST(JobSpecYamlTest, TextMustBeUtf8AndMessagesStayUtf8) {
  // The spec and every message quoting it travel in protobuf strings, which must be UTF-8.
  const auto errors = ErrorsOf(WithSpec("  training: {epochs: \xff}\n"));
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);
  EXPECT_EQ(errors[0].problem, "is not UTF-8 text: byte 145 is not part of a UTF-8 character");
  EXPECT_EQ(errors[0].line, 7);
  EXPECT_EQ(errors[0].column, 22);
  // A long value is cut for the message on a character boundary, never inside one.
  std::string long_value = "x";
  for (int i = 0; i < 40; ++i) long_value += "\xc3\xa9";  // é
  const std::string problem =
      OnlyErrorFor(ErrorsOf(WithSpec("  training: {epochs: \"" + long_value + "\"}\n")),
                   "spec.training.epochs")
          .problem;
  EXPECT_EQ(FirstInvalidUtf8Byte(problem), std::nullopt) << problem;
  EXPECT_THAT(problem, ::testing::EndsWith("\xc3\xa9..."));
  // yaml-cpp's own messages may quote one byte of a character (found by the fuzzer).
  const auto syntax = ErrorsOf(WithSpec("  training: {epochs: \"\\\xc3\xa1\"}\n"));
  ASSERT_EQ(syntax.size(), 1u) << Describe(syntax);
  EXPECT_EQ(FirstInvalidUtf8Byte(syntax[0].problem), std::nullopt) << syntax[0].problem;
}

TEST(JobSpecYamlTest, DatasetsFixShapeClassesAndPath) {
  auto errors = ErrorsOf(absl::StrReplaceAll(
      kMinimal,
      {{"dataset: synthetic", "dataset: cifar10, path: /d"},
       {"{arch: resnet20}", "{arch: resnet20, numClasses: 7, inputShape: [1, 28, 28]}"}}));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.model.inputShape").problem,
            "must be [3, 32, 32] for dataset cifar10, got [1, 28, 28]");
  EXPECT_EQ(OnlyErrorFor(errors, "spec.model.numClasses").problem,
            "must be 10 for dataset cifar10, got 7");

  errors = ErrorsOf(absl::StrReplaceAll(kMinimal, {{"dataset: synthetic", "dataset: cifar100"}}));
  EXPECT_EQ(OnlyErrorFor(errors, "spec.data.path").problem, "is required for dataset cifar100");

  auto spec =
      ParseJobSpec(absl::StrReplaceAll(
                       kMinimal, {{"dataset: synthetic", "dataset: fashion-mnist"},
                                  {"{arch: resnet20}", "{arch: resnet20, inputShape: [1,28,28]}"}}),
                   "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->data.path, "/usr/share/datasets/fashion-mnist");
}

TEST(JobSpecYamlTest, BatchMustSplitEvenlyAcrossWorkers) {
  const auto errors =
      ErrorsOf(WithSpec("  training: {batchSize: 100}\n  resources: {workers: 3}\n"));
  EXPECT_THAT(OnlyErrorFor(errors, "spec.training.batchSize").problem,
              ::testing::StartsWith("must be divisible by spec.resources.workers (3)"));
}

TEST(JobSpecYamlTest, MalformedYamlIsReportedWithItsPosition) {
  const auto errors = ErrorsOf("apiVersion: ocs/v1\nkind: [unclosed\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].problem, ::testing::StartsWith("is not valid YAML"));
  EXPECT_GT(errors[0].line, 0);
}

TEST(JobSpecYamlTest, HostileInputIsRejectedWithoutCrashing) {
  // Not a mapping at all, empty, binary junk, deep nesting, and a file far too large.
  EXPECT_EQ(ErrorsOf("").front().problem, "must be a mapping, got null");
  EXPECT_EQ(ErrorsOf("- a\n- b\n").front().problem, "must be a mapping, got a list");
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919) % 256));
  EXPECT_THAT(ErrorsOf(junk), ::testing::Not(IsEmpty()));
  EXPECT_THAT(ErrorsOf(std::string(100000, '[') + std::string(100000, ']')),
              ::testing::Not(IsEmpty()));
  const std::string deep_map =
      WithSpec("  model: " + std::string(5000, '{') + "a: b" + std::string(5000, '}') + "\n");
  EXPECT_THAT(ErrorsOf(deep_map), ::testing::Not(IsEmpty()));
  const auto huge = ErrorsOf(std::string(kMaxJobSpecBytes + 1, '#'));
  ASSERT_EQ(huge.size(), 1u);
  EXPECT_THAT(huge[0].problem, ::testing::HasSubstr("a job spec may be at most"));
}

TEST(JobSpecYamlTest, StatusListsEveryProblemOnItsOwnLine) {
  auto spec = ParseJobSpec(WithSpec("  maxRestarts: -1\n  pruning: {roundTo: 0}\n"), "job.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(spec.status().message()),
            "invalid job spec job.yaml: 2 problems\n"
            "  spec.maxRestarts: must be in [0, 100], got -1 (job.yaml:7:16)\n"
            "  spec.pruning.roundTo: must be in [1, 1024], got 0 (job.yaml:8:22)");
}

TEST(JobSpecYamlTest, LoadJobSpecFileNamesTheFile) {
  auto missing = LoadJobSpecFile("/nonexistent/job.yaml");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              ::testing::HasSubstr("/nonexistent/job.yaml"));
  auto directory = LoadJobSpecFile("/tmp");
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(directory.status().message(), "job spec /tmp: is a folder, not a file");
  // A device or pipe is read with a bound instead of to its (never coming) end.
  auto endless = LoadJobSpecFile("/dev/zero");
  EXPECT_EQ(endless.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(endless.status().message()),
              ::testing::HasSubstr("a job spec may be at most"));

  const std::string path = ::testing::TempDir() + "/bad-job.yaml";
  std::ofstream(path) << WithSpec("  maxRestarts: many\n");
  auto bad = LoadJobSpecFile(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::HasSubstr(absl::StrCat("(", path, ":7:16)")));
}

TEST(JobSpecWarningsTest, TheDefaultsHaveNone) {
  auto spec = ParseJobSpec(kMinimal, "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(JobSpecWarnings(*spec), ::testing::IsEmpty());
}

// A window too long for the sparsity phase runs (benchmarks force the prune on purpose), but the
// stability indicator can never decide: the user is told, with the epochs, and how to fix it.
TEST(JobSpecWarningsTest, AStabilityWindowTooLongToDecideBeforeTheDeadlineIsAWarning) {
  auto spec = ParseJobSpec(WithSpec("  training: {epochs: 40}\n"
                                    "  stability: {monitorStartEpoch: 2, sparsityStartEpoch: 3,"
                                    " sparsityEndEpoch: 20, window: 17}\n"),
                           "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::vector<SpecError> warnings = JobSpecWarnings(*spec);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].field, "spec.stability.window");
  EXPECT_THAT(warnings[0].problem, ::testing::HasSubstr("at epoch 20 at the earliest"));
  EXPECT_THAT(warnings[0].problem, ::testing::HasSubstr("always forced at epoch 20"));

  // J is defined from epoch 4 (history 3 from epoch 2); 16 values of it fill the window by 19.
  spec->stability.window = 16;
  EXPECT_THAT(JobSpecWarnings(*spec), ::testing::IsEmpty());
}

}  // namespace
}  // namespace ocs::common
