// The architectures ocs prunes, built on the network representation. Layer names follow the
// PyTorch modules they correspond to (torchvision for ImageNet models), so users can name them in
// `ignoredLayers` and compare state dicts.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/engine/network.h"

namespace ocs::worker::engine {

// `arch` is one of common::KnownArchitectures(). InvalidArgument for an unknown arch, or an
// input too small for it (e.g. ResNet-50's five stride-2 stages on a 16x16 input).
absl::StatusOr<Network> BuildModel(absl::string_view arch, int num_classes, Shape input);

}  // namespace ocs::worker::engine
