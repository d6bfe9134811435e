#include "worker/commands/model_command.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <variant>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/cli_parse.h"
#include "common/job_spec_yaml.h"
#include "worker/engine/flops.h"
#include "worker/engine/flops_target_search.h"
#include "worker/engine/freeze.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/network_model.h"

namespace ocs::worker::commands {
namespace {

using engine::ChannelGroups;
using engine::Network;

constexpr int kExitFailure = 1;

// What a model command works on, from --job or from --arch/--num-classes/--input.
struct Subject {
  common::JobSpec spec;
  Network network;
  ChannelGroups groups;
};

// The ranges a job spec allows for spec.model.numClasses and inputShape (common/job_spec_yaml.cc),
// kept for the same values given as flags.
constexpr int kMinClasses = 2, kMaxClasses = 100000;
constexpr int kMaxChannels = 1024, kMaxSide = 8192;

// What is wrong with --num-classes, or "".
std::string NumClassesError(int classes) {
  if (classes >= kMinClasses && classes <= kMaxClasses) return "";
  return absl::StrCat("--num-classes must be in [", kMinClasses, ", ", kMaxClasses, "], got ",
                      classes);
}

// What is wrong with --input, or "".
std::string InputShapeError(const std::vector<int>& shape) {
  if (shape.size() == 3 && shape[0] >= 1 && shape[0] <= kMaxChannels && shape[1] >= 1 &&
      shape[1] <= kMaxSide && shape[2] >= 1 && shape[2] <= kMaxSide) {
    return "";
  }
  return absl::StrCat("--input must be C,H,W with C in [1, ", kMaxChannels, "] and H, W in [1, ",
                      kMaxSide, "], got ", absl::StrJoin(shape, ","));
}

// The subject, or the exit code after printing what was wrong.
std::variant<Subject, int> LoadSubject(const ModelOptions& options) {
  common::JobSpec spec;
  if (!options.job.empty()) {
    auto loaded = common::LoadJobSpecFile(options.job);
    if (!loaded.ok()) {
      std::cerr << "error: " << loaded.status().message() << "\n";
      return common::kExitUsage;
    }
    spec = *std::move(loaded);
  } else {
    for (const std::string& error :
         {NumClassesError(options.num_classes), InputShapeError(options.input)}) {
      if (error.empty()) continue;
      std::cerr << "error: " << error << "\n";
      return common::kExitUsage;
    }
    spec.model.arch = options.arch;
    spec.model.num_classes = options.num_classes;
    spec.model.input_shape = options.input;
  }
  const auto& shape = spec.model.input_shape;
  auto network =
      engine::BuildModel(spec.model.arch, spec.model.num_classes, {shape[0], shape[1], shape[2]});
  if (!network.ok()) {
    std::cerr << "error: " << network.status().message() << "\n";
    return common::kExitUsage;
  }
  auto groups = ChannelGroups::Derive(
      *network, {spec.pruning.layer_prune_limit, spec.pruning.ignored_layers});
  if (!groups.ok()) {
    std::cerr << "error: " << groups.status().message() << "\n";
    return common::kExitUsage;
  }
  return Subject{std::move(spec), *std::move(network), *std::move(groups)};
}

std::string Millions(int64_t value) { return absl::StrFormat("%.3f M", value / 1e6); }

std::string Shape(const std::vector<int>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// "0-3,5,7-9": kept channel indices, compactly.
std::string Ranges(const std::vector<int>& indices) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < indices.size();) {
    size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    parts.push_back(j == i ? absl::StrCat(indices[i]) : absl::StrCat(indices[i], "-", indices[j]));
    i = j + 1;
  }
  return absl::StrJoin(parts, ",");
}

// Where `model freeze` writes: -o, or model.frozen.pt beside model.pt, or in the folder -o names.
std::string FrozenPath(const ModelOptions& options) {
  namespace fs = std::filesystem;
  const fs::path model(options.model_path);
  const fs::path name = fs::path(model.filename()).replace_extension(".frozen.pt");
  if (options.frozen_path.empty()) return (model.parent_path() / name).string();
  const fs::path out(options.frozen_path);
  if (fs::is_directory(out) || !out.has_filename()) return (out / name).string();
  return options.frozen_path;
}

std::vector<std::string> MemberNames(const Network& network, const engine::ChannelGroup& group) {
  std::vector<std::string> names;
  for (const engine::GroupMember& member : group.members) {
    const std::string& name = network.layer(member.layer).name;
    const char* role = member.role == engine::MemberRole::kConsumer ? "in" : "out";
    names.push_back(absl::StrCat(name, ":", role));
  }
  return names;
}

nlohmann::json GroupJson(const Network& network, const ChannelGroups& groups, int g) {
  const engine::ChannelGroup& group = groups.group(g);
  return {{"group", g},
          {"name", group.name},
          {"channels", group.size},
          {"minKept", group.min_kept},
          {"prunable", group.prunable},
          {"fixedReason", group.fixed_reason},
          {"members", MemberNames(network, group)}};
}

}  // namespace

ModelCommands AddModelCommands(CLI::App& app, ModelOptions* options) {
  CLI::App* model = app.add_subcommand(
      "model", "Inspect a model, search its sub-network or freeze a trained one for serving");
  model->require_subcommand(1);
  auto add_subject = [options](CLI::App* command) {
    auto* job = command->add_option("--job", options->job, "Job spec to take the model from");
    auto* arch = command->add_option("--arch", options->arch, "Architecture, e.g. resnet56");
    job->excludes(arch);
    command->add_option("--num-classes", options->num_classes, "Classes (with --arch)")
        ->capture_default_str();
    command->add_option("--input", options->input, "Input shape C,H,W (with --arch)")
        ->delimiter(',')
        ->expected(3);
    command->add_flag("--json", options->json, "Print JSON");
    command->callback([options, command] {
      if (options->job.empty() && options->arch.empty()) {
        throw CLI::RequiredError(command->get_name() + ": --job or --arch");
      }
    });
  };
  CLI::App* inspect = model->add_subcommand("inspect", "FLOPs, parameters and channel groups");
  add_subject(inspect);
  CLI::App* search =
      model->add_subcommand("search", "Sub-network at a FLOPs target, on seeded random weights");
  add_subject(search);
  search->add_option("--target", options->target, "FLOPs reduction in (0, 1) (default: the job's)")
      ->check(CLI::Range(0.0, 1.0));
  search->add_option("--seed", options->seed, "Seed of the random weights")->capture_default_str();

  CLI::App* freeze = model->add_subcommand(
      "freeze", "A trained model.pt made ready for serving: BatchNorm folded, outputs checked");
  freeze->add_option("model", options->model_path, "model.pt of a job (TorchScript)")->required();
  freeze->add_option(
      "-o,--output", options->frozen_path,
      "Where to write the frozen model, a file or a folder (default: model.frozen.pt beside it)");
  freeze->add_option("--input", options->input, "The model's input shape C,H,W")
      ->delimiter(',')
      ->expected(3)
      ->required();
  freeze->add_option("--device", options->device, "Freeze and check on cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  freeze->add_flag("--json", options->json, "Print JSON");
  return {inspect, search, freeze};
}

int RunModelInspect(const ModelOptions& options) {
  auto loaded = LoadSubject(options);
  if (auto* code = std::get_if<int>(&loaded)) return *code;
  const Subject& s = std::get<Subject>(loaded);
  const engine::ModelCost cost = engine::NetworkCost(s.network);
  int prunable = 0, prunable_channels = 0;
  for (const auto& group : s.groups.groups()) {
    prunable += group.prunable;
    prunable_channels += group.prunable ? group.size - group.min_kept : 0;
  }
  if (options.json) {
    nlohmann::json out = {{"arch", s.spec.model.arch},
                          {"inputShape", s.spec.model.input_shape},
                          {"numClasses", s.spec.model.num_classes},
                          {"flops", cost.flops},
                          {"params", cost.params},
                          {"groups", nlohmann::json::array()}};
    for (int g = 0; g < s.groups.size(); ++g)
      out["groups"].push_back(GroupJson(s.network, s.groups, g));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat(
      "model %s: input %s, %d classes\nFLOPs %s (%d multiply-accumulates of conv and linear "
      "layers)\nparameters %s (%d)\ngroups: %d, %d prunable (up to %d channels removable)\n",
      s.spec.model.arch, Shape(s.spec.model.input_shape), s.spec.model.num_classes,
      Millions(cost.flops), cost.flops, Millions(cost.params), cost.params, s.groups.size(),
      prunable, prunable_channels);
  std::cout << absl::StrFormat("%5s  %-28s %8s %8s  %-24s %s\n", "group", "name", "channels",
                               "minKept", "prunable", "members");
  for (int g = 0; g < s.groups.size(); ++g) {
    const auto& group = s.groups.group(g);
    const auto members = MemberNames(s.network, group);
    std::cout << absl::StrFormat(
        "%5d  %-28s %8d %8d  %-24s %s\n", g, group.name, group.size, group.min_kept,
        group.prunable ? "yes" : "no: " + group.fixed_reason, absl::StrJoin(members, " "));
  }
  return 0;
}

int RunModelSearch(const ModelOptions& options) {
  auto loaded = LoadSubject(options);
  if (auto* code = std::get_if<int>(&loaded)) return *code;
  const Subject& s = std::get<Subject>(loaded);
  const double target = options.target > 0 ? options.target : s.spec.pruning.target_flops_reduction;
  engine::NetworkModel model(s.network, options.seed);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto importance = engine::GroupSaliency(model, s.groups, s.spec.pruning.cost_weighting);
  const auto scored = Clock::now();
  auto result =
      engine::SearchSubnetwork(s.network, s.groups, importance, {target, s.spec.pruning.round_to});
  const auto searched = Clock::now();
  if (!result.ok()) {
    std::cerr << "error: " << result.status().message() << "\n";
    return kExitFailure;
  }
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  const double saliency_ms = ms(scored - start), search_ms = ms(searched - scored);

  if (options.json) {
    nlohmann::json out = {
        {"arch", s.spec.model.arch},
        {"target", target},
        {"seed", options.seed},
        {"before", {{"flops", result->dense_flops}, {"params", result->dense_params}}},
        {"after", {{"flops", result->pruned_flops}, {"params", result->pruned_params}}},
        {"achievedReduction", result->achieved_reduction},
        {"maxReduction", result->max_reduction},
        {"reached", result->reached},
        {"note", result->note},
        {"wallTimeMs", {{"saliency", saliency_ms}, {"search", search_ms}}},
        {"groups", nlohmann::json::array()}};
    for (int g = 0; g < s.groups.size(); ++g) {
      out["groups"].push_back({{"group", g},
                               {"name", s.groups.group(g).name},
                               {"size", result->mask.groups[g].size},
                               {"kept", result->mask.groups[g].kept}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat(
        "model %s, target FLOPs reduction %.4f (seed %d)\nFLOPs %s -> %s: reduction %.4f (%s)\n"
        "parameters %s -> %s\nwall time: saliency %.2f ms + search %.2f ms = %.2f ms\n",
        s.spec.model.arch, target, options.seed, Millions(result->dense_flops),
        Millions(result->pruned_flops), result->achieved_reduction,
        result->reached ? "target reached" : result->note, Millions(result->dense_params),
        Millions(result->pruned_params), saliency_ms, search_ms, saliency_ms + search_ms);
    std::cout << absl::StrFormat("%5s  %-28s %9s  %s\n", "group", "name", "kept", "kept channels");
    for (int g = 0; g < s.groups.size(); ++g) {
      const auto& group = result->mask.groups[g];
      std::cout << absl::StrFormat("%5d  %-28s %4d/%-4d  %s\n", g, s.groups.group(g).name,
                                   group.kept.size(), group.size, Ranges(group.kept));
    }
  }
  if (!result->reached) {
    std::cerr << "error: " << result->note << "\n";
    return kExitFailure;
  }
  return 0;
}

int RunModelFreeze(const ModelOptions& options) {
  if (const std::string error = InputShapeError(options.input); !error.empty()) {
    std::cerr << "error: " << error << "\n";
    return common::kExitUsage;
  }
  const std::string out = FrozenPath(options);
  const std::vector<int64_t> input(options.input.begin(), options.input.end());
  auto frozen = engine::FreezeForServing(options.model_path, out,
                                         {.input_shape = input, .cuda = options.device == "cuda"});
  if (!frozen.ok()) {
    std::cerr << "error: " << frozen.status().message() << "\n";
    const bool bad_input =
        absl::IsInvalidArgument(frozen.status()) || absl::IsNotFound(frozen.status());
    return bad_input ? common::kExitUsage : kExitFailure;
  }
  if (options.json) {
    std::cout << nlohmann::json{{"model", options.model_path},
                                {"frozen", out},
                                {"device", options.device},
                                {"batchNormsBefore", frozen->batch_norms_before},
                                {"batchNormsAfter", frozen->batch_norms_after},
                                {"maxAbsDifference", frozen->max_abs_difference},
                                {"maxAbsOutput", frozen->max_abs_output}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << absl::StrFormat(
      "frozen %s -> %s (%s)\nBatchNorm folded into convolutions: %d of %d\n"
      "check batch of 2 %s: outputs differ by at most %.3g (largest output %.3g)\n",
      options.model_path, out, options.device,
      frozen->batch_norms_before - frozen->batch_norms_after, frozen->batch_norms_before,
      Shape(options.input), frozen->max_abs_difference, frozen->max_abs_output);
  return 0;
}

}  // namespace ocs::worker::commands
