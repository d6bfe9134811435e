// The pruning engine's per-epoch cost, against the budgets of the engine's issue:
// saliency + search + mask of ResNet-56 <= 10 ms and of ResNet-50 <= 100 ms, surgery of
// ResNet-50 <= 1 s, on a 2-core machine. Prints medians (and p90) over repeated runs.
//   ocs_engine_bench [--repeats N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include <ATen/ATen.h>

#include "worker/engine/flops_target_search.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/surgery.h"
#include "worker/train/torch_runtime.h"

namespace {

using namespace ocs::worker::engine;
using Clock = std::chrono::steady_clock;

struct Timing {
  double median_ms;
  double p90_ms;
};

// Times `run` `repeats` times; `prepare` (untimed) runs before each.
Timing Measure(int repeats, const std::function<void()>& prepare,
               const std::function<void()>& run) {
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    prepare();
    const auto start = Clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 9 / 10)]};
}

void Row(const char* what, Timing t, double budget_ms) {
  std::printf("| %-42s | %9.2f | %9.2f | %9.0f | %-4s |\n", what, t.median_ms, t.p90_ms, budget_ms,
              t.median_ms <= budget_ms ? "ok" : "OVER");
}

// The baseline: the same saliency written the plain LibTorch way, one pow+sum per group member.
// The engine computes each layer's squared sums once, in one loop over its CPU copy.
std::vector<std::vector<float>> BaselineSaliency(const NetworkModel& model,
                                                 const ChannelGroups& groups) {
  at::NoGradGuard no_grad;
  std::vector<std::vector<float>> importance;
  for (const ChannelGroup& group : groups.groups()) {
    at::Tensor sum = at::zeros({group.size});
    for (const GroupMember& m : group.members) {
      const at::Tensor w = model.tensors(m.layer).weight.detach();
      const int64_t dim = m.role == MemberRole::kConsumer ? 1 : 0;
      std::vector<int64_t> others;
      for (int64_t d = 0; d < w.dim(); ++d) {
        if (d != dim) others.push_back(d);
      }
      at::Tensor per_entry = others.empty() ? w.pow(2) : w.pow(2).sum(others);
      per_entry = per_entry.narrow(0, m.segment.offset, int64_t{group.size} * m.segment.block)
                      .view({group.size, m.segment.block})
                      .sum(1);
      if (m.role != MemberRole::kBatchNorm) {
        per_entry = per_entry / std::sqrt(double(w.numel() / w.size(dim)) * m.segment.block);
      }
      sum += per_entry;
    }
    sum /= static_cast<double>(std::max<size_t>(1, group.members.size()));
    importance.emplace_back(sum.data_ptr<float>(), sum.data_ptr<float>() + group.size);
  }
  return importance;
}

Timing BaselineTiming(const char* arch, Shape input, int repeats) {
  const Network network = *BuildModel(arch, input.height > 32 ? 1000 : 10, input);
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 1);
  // Same numbers as the engine's (without cost weighting), or the comparison means nothing.
  const auto ours = GroupSaliency(model, groups, false);
  const auto theirs = BaselineSaliency(model, groups);
  for (size_t g = 0; g < ours.size(); ++g) {
    for (size_t c = 0; c < ours[g].size(); ++c) {
      if (std::abs(ours[g][c] - theirs[g][c]) > 1e-4f * (1 + std::abs(theirs[g][c]))) std::abort();
    }
  }
  return Measure(
      repeats, [] {},
      [&] {
        const auto importance = BaselineSaliency(model, groups);
        const auto result = SearchSubnetwork(network, groups, importance, {0.5});
        if (!result.ok()) std::abort();
      });
}

Timing MaskTiming(const char* arch, Shape input, int repeats) {
  const Network network = *BuildModel(arch, input.height > 32 ? 1000 : 10, input);
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  NetworkModel model(network, 1);
  return Measure(
      repeats, [] {},
      [&] {
        const auto importance = GroupSaliency(model, groups, true);
        const auto result = SearchSubnetwork(network, groups, importance, {0.5});
        if (!result.ok() || result->mask.groups.empty()) std::abort();
      });
}

Timing SurgeryTiming(int repeats) {
  const Network network = *BuildModel("resnet50", 1000, {3, 224, 224});
  const ChannelGroups groups = *ChannelGroups::Derive(network, {});
  std::unique_ptr<NetworkModel> model;
  NetworkModel scout(network, 1);
  const auto mask =
      SearchSubnetwork(network, groups, GroupSaliency(scout, groups, true), {0.5})->mask;
  return Measure(
      repeats, [&] { model = std::make_unique<NetworkModel>(network, 1); },
      [&] {
        if (!PruneModel(*model, groups, mask).ok()) std::abort();
      });
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 21;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--repeats") == 0) repeats = std::atoi(argv[i + 1]);
  }
  ocs::worker::train::ConfigureIntraOpThreads(0);
  std::printf("%s, %d repeats\n\n", ocs::worker::train::DescribeTorchRuntime().c_str(), repeats);
  std::printf("| %-42s | %9s | %9s | %9s | %-4s |\n", "operation", "median ms", "p90 ms",
              "budget ms", "");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(44, '-').c_str(), std::string(11, '-').c_str(),
              std::string(11, '-').c_str(), std::string(11, '-').c_str(),
              std::string(6, '-').c_str());
  Row("saliency+search+mask ResNet-56 (CIFAR)", MaskTiming("resnet56", {3, 32, 32}, repeats), 10);
  Row("  baseline: per-member ATen saliency", BaselineTiming("resnet56", {3, 32, 32}, repeats), 10);
  Row("saliency+search+mask ResNet-50 (224x224)", MaskTiming("resnet50", {3, 224, 224}, repeats),
      100);
  Row("  baseline: per-member ATen saliency", BaselineTiming("resnet50", {3, 224, 224}, repeats),
      100);
  Row("surgery ResNet-50 (224x224), 50% FLOPs", SurgeryTiming(std::max(3, repeats / 4)), 1000);
  return 0;
}
