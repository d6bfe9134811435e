#include "worker/engine/flops_target_search.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "worker/engine/flops.h"

namespace ocs::worker::engine {
namespace {

struct Candidate {
  float importance;
  int group;
  int rank;  // position in the group's ascending order
};

// Channel indices of each group, least important first (ties by index, so results are stable).
std::vector<std::vector<int>> AscendingOrder(const std::vector<std::vector<float>>& importance) {
  std::vector<std::vector<int>> order(importance.size());
  for (size_t g = 0; g < importance.size(); ++g) {
    order[g].resize(importance[g].size());
    std::iota(order[g].begin(), order[g].end(), 0);
    std::stable_sort(order[g].begin(), order[g].end(),
                     [&](int a, int b) { return importance[g][a] < importance[g][b]; });
  }
  return order;
}

// The width a group has after pruning `pruned` channels: kept widths are multiples of roundTo.
int RoundedWidth(int size, int pruned, int round_to) {
  if (pruned == 0) return size;
  const int kept = (size - pruned + round_to - 1) / round_to * round_to;
  return std::min(kept, size);
}

class ThresholdWalk {
 public:
  ThresholdWalk(const Network& network, const ChannelGroups& groups, const SearchOptions& options)
      : groups_(groups),
        cost_(network, groups),
        options_(options),
        widths_(groups.sizes()),
        pruned_(groups.size(), 0),
        frozen_(groups.size(), false),
        layer_flops_(network.size()) {
    for (int i = 0; i < network.size(); ++i) {
      if (network.layer(i).has_weights()) layer_flops_[i] = cost_.LayerFlops(i, widths_);
    }
    dense_flops_ = flops_ = cost_.Cost(widths_).flops;
  }

  double reduction(int64_t flops) const {
    return 1.0 - static_cast<double>(flops) / static_cast<double>(dense_flops_);
  }
  bool done() const { return reduction(flops_) >= options_.target_reduction - options_.tolerance; }

  // Prunes the next channel of the candidate's group unless that overshoots the target; a group
  // that would overshoot is closed, so each group always loses a prefix of its ranking.
  void Offer(const Candidate& candidate) {
    const int g = candidate.group;
    if (frozen_[g]) return;
    const int width = RoundedWidth(groups_.group(g).size, pruned_[g] + 1, options_.round_to);
    if (width == widths_[g]) {
      ++pruned_[g];
      return;
    }
    const int previous = widths_[g];
    widths_[g] = width;
    int64_t delta = 0;
    for (int layer : groups_.layers_of_group(g)) {
      delta += cost_.LayerFlops(layer, widths_) - layer_flops_[layer];
    }
    if (reduction(flops_ + delta) > options_.target_reduction + options_.tolerance) {
      widths_[g] = previous;
      frozen_[g] = true;
      return;
    }
    for (int layer : groups_.layers_of_group(g))
      layer_flops_[layer] = cost_.LayerFlops(layer, widths_);
    flops_ += delta;
    ++pruned_[g];
  }

  // The walk stops short when every group's next channel overshoots. Channel costs are coarse
  // in small networks (one stage-3 channel of ResNet-20 is 0.18% of its FLOPs), so finish with
  // a local search over moves that keep each group's ranking: prune a group's next channel or
  // restore its last one, alone or in pairs, while that brings the reduction closer to the target.
  void Refine(const std::vector<int>& floor_widths) {
    for (int iteration = 0; iteration < kMaxRefinements && !done_within_tolerance(); ++iteration) {
      const std::vector<Move> moves = CandidateMoves(floor_widths);
      double best_error = std::abs(reduction(flops_) - options_.target_reduction);
      std::vector<Move> best;
      for (size_t i = 0; i < moves.size(); ++i) {
        for (size_t j = i; j < moves.size(); ++j) {
          if (j != i && moves[j].group == moves[i].group) continue;
          std::vector<Move> combination = {moves[i]};
          if (j != i) combination.push_back(moves[j]);
          const double error =
              std::abs(reduction(flops_ + Delta(combination)) - options_.target_reduction);
          if (error < best_error - 1e-12) best_error = error, best = combination;
        }
      }
      if (best.empty()) return;
      for (const Move& move : best) Apply(move);
    }
  }

  const std::vector<int>& widths() const { return widths_; }
  const WidthCostModel& cost() const { return cost_; }

 private:
  static constexpr int kMaxRefinements = 64;
  struct Move {
    int group;
    int width;
  };

  bool done_within_tolerance() const {
    return std::abs(reduction(flops_) - options_.target_reduction) <= options_.tolerance;
  }

  // For each prunable group: one rounded step narrower (down to its floor) and one wider.
  std::vector<Move> CandidateMoves(const std::vector<int>& floor_widths) const {
    std::vector<Move> moves;
    for (int g = 0; g < groups_.size(); ++g) {
      const int size = groups_.group(g).size, width = widths_[g];
      if (!groups_.group(g).prunable) continue;
      for (int pruned = size - width + 1; pruned <= size - floor_widths[g]; ++pruned) {
        const int narrower = RoundedWidth(size, pruned, options_.round_to);
        if (narrower < width) {
          if (narrower >= floor_widths[g]) moves.push_back({g, narrower});
          break;
        }
      }
      for (int pruned = size - width - 1; pruned >= 0; --pruned) {
        const int wider = RoundedWidth(size, pruned, options_.round_to);
        if (wider > width) {
          moves.push_back({g, wider});
          break;
        }
      }
    }
    return moves;
  }

  // The FLOPs change of applying `moves` together (their groups may share layers).
  int64_t Delta(const std::vector<Move>& moves) {
    std::vector<int> layers;
    for (const Move& move : moves) {
      const auto& touched = groups_.layers_of_group(move.group);
      layers.insert(layers.end(), touched.begin(), touched.end());
    }
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    std::vector<int> previous;
    for (const Move& move : moves)
      previous.push_back(std::exchange(widths_[move.group], move.width));
    int64_t delta = 0;
    for (int layer : layers) delta += cost_.LayerFlops(layer, widths_) - layer_flops_[layer];
    for (size_t i = 0; i < moves.size(); ++i) widths_[moves[i].group] = previous[i];
    return delta;
  }

  void Apply(const Move& move) {
    flops_ += Delta({move});
    widths_[move.group] = move.width;
    for (int layer : groups_.layers_of_group(move.group)) {
      layer_flops_[layer] = cost_.LayerFlops(layer, widths_);
    }
  }

  const ChannelGroups& groups_;
  WidthCostModel cost_;
  SearchOptions options_;
  std::vector<int> widths_;
  std::vector<int> pruned_;
  std::vector<bool> frozen_;
  std::vector<int64_t> layer_flops_;
  int64_t dense_flops_ = 0;
  int64_t flops_ = 0;
};

}  // namespace

absl::StatusOr<SearchResult> SearchSubnetwork(const Network& network, const ChannelGroups& groups,
                                              const std::vector<std::vector<float>>& importance,
                                              const SearchOptions& options) {
  if (static_cast<int>(importance.size()) != groups.size()) {
    return absl::InvalidArgumentError(absl::StrCat("importance has ", importance.size(),
                                                   " groups, the model has ", groups.size()));
  }
  for (int g = 0; g < groups.size(); ++g) {
    if (static_cast<int>(importance[g].size()) != groups.group(g).size) {
      return absl::InvalidArgumentError(absl::StrCat("importance of group ", g, " has ",
                                                     importance[g].size(), " channels, expected ",
                                                     groups.group(g).size));
    }
  }
  const std::vector<std::vector<int>> order = AscendingOrder(importance);
  std::vector<Candidate> candidates;
  std::vector<int> floor_widths = groups.sizes();
  for (int g = 0; g < groups.size(); ++g) {
    const ChannelGroup& group = groups.group(g);
    if (!group.prunable) continue;
    for (int rank = 0; rank < group.size - group.min_kept; ++rank) {
      candidates.push_back({importance[g][order[g][rank]], g, rank});
    }
    floor_widths[g] = RoundedWidth(group.size, group.size - group.min_kept, options.round_to);
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.importance, a.group, a.rank) < std::tie(b.importance, b.group, b.rank);
  });

  ThresholdWalk walk(network, groups, options);
  for (const Candidate& candidate : candidates) {
    if (walk.done()) break;
    walk.Offer(candidate);
  }
  walk.Refine(floor_widths);

  SearchResult result;
  result.widths = walk.widths();
  const ModelCost dense = walk.cost().Cost(groups.sizes());
  const ModelCost pruned = walk.cost().Cost(result.widths);
  result.dense_flops = dense.flops, result.dense_params = dense.params;
  result.pruned_flops = pruned.flops, result.pruned_params = pruned.params;
  result.achieved_reduction = walk.reduction(pruned.flops);
  result.max_reduction = walk.reduction(walk.cost().Cost(floor_widths).flops);
  result.reached =
      std::abs(result.achieved_reduction - options.target_reduction) <= options.tolerance;
  if (!result.reached) {
    result.note = result.max_reduction < options.target_reduction - options.tolerance
                      ? absl::StrFormat(
                            "target %.4f is unreachable: the layer prune limit and "
                            "the fixed groups cap the reduction at %.4f",
                            options.target_reduction, result.max_reduction)
                      : absl::StrFormat("no channel combination lands within %.0e of %.4f",
                                        options.tolerance, options.target_reduction);
  }
  for (int g = 0; g < groups.size(); ++g) {
    const int size = groups.group(g).size;
    std::vector<int> kept(order[g].begin() + (size - result.widths[g]), order[g].end());
    std::sort(kept.begin(), kept.end());
    result.mask.groups.push_back({size, std::move(kept)});
  }
  return result;
}

}  // namespace ocs::worker::engine
