#include "worker/engine/job_model.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "worker/engine/model_zoo.h"

namespace ocs::worker::engine {
namespace {

// The engine names the spec field in its message ("spec.pruning.ignoredLayers: ..."); a
// message naming none is about the model as a whole.
common::SpecError ToSpecError(const absl::Status& status) {
  const std::pair<std::string, std::string> parts =
      absl::StrSplit(status.message(), absl::MaxSplits(": ", 1));
  if (absl::StartsWith(parts.first, "spec.") && !parts.second.empty()) {
    return {parts.first, parts.second};
  }
  return {"spec.model", std::string(status.message())};
}

}  // namespace

absl::StatusOr<ChannelGroups> JobChannelGroups(const common::JobSpec& spec) {
  const auto& s = spec.model.input_shape;
  auto network = BuildModel(spec.model.arch, spec.model.num_classes, {s[0], s[1], s[2]});
  if (!network.ok()) return network.status();
  return ChannelGroups::Derive(*network,
                               {spec.pruning.layer_prune_limit, spec.pruning.ignored_layers});
}

std::vector<common::SpecError> JobModelErrors(const common::JobSpec& spec) {
  const auto groups = JobChannelGroups(spec);
  if (groups.ok()) return {};
  return {ToSpecError(groups.status())};
}

}  // namespace ocs::worker::engine
