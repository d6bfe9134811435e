// What a pruning job hands its user: the model as TorchScript (loadable by torch::jit::load and
// Python's torch.jit.load, no ocs code needed) and a JSON report of what was pruned.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/mask.h"
#include "worker/engine/channel_groups.h"
#include "worker/engine/network.h"
#include "worker/engine/network_model.h"

namespace ocs::worker::engine {

// Writes `model` (its current, possibly pruned, architecture and tensors, moved to the CPU) as a
// TorchScript module whose forward(x) computes model.forward(x). Tensors are attributes named
// after the layers with '.' replaced by '_' ("stage_1_0_conv_a_weight"). The file is written
// whole or not at all (files::WriteAtomically).
absl::Status ExportTorchScript(const NetworkModel& model, const std::string& path);

// The JSON report: FLOPs and parameters before/after, per-layer widths before/after, and the mask
// with each group's name. `groups` are the dense network's.
std::string PruneReportJson(const Network& dense, const Network& pruned,
                            const ChannelGroups& groups, const common::Mask& mask);

}  // namespace ocs::worker::engine
