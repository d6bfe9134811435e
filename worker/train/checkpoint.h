// Checkpoints of a training run: weights, BatchNorm statistics, the optimizer's momentum buffers
// and everything the loop needs to continue (epoch, iteration — hence the schedule position —,
// phase, the stability history and recent masks, the prune mask, accuracies around the prune).
// Written atomically (a temporary file, then rename) as one LibTorch archive; the newest two are
// kept. Random state needs no saving: data order and augmentation are seeded by (seed, epoch).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "absl/status/statusor.h"

namespace ocs::worker::train {

struct Checkpoint {
  std::string meta_json;                      // the loop's state, see trainer.cc
  std::map<std::string, at::Tensor> tensors;  // "param/…", "buffer/…", "momentum/…"
};

// Writes `checkpoint` as DIR/checkpoint-epoch-NNNNN.pt and removes all but the newest two.
absl::Status WriteCheckpoint(const std::string& dir, int epoch, const Checkpoint& checkpoint);

// The newest checkpoint in `dir` that loads; NotFound when there is none. A corrupt newest file
// is skipped (with its error in `skipped`) in favour of the one before.
absl::StatusOr<Checkpoint> ReadLatestCheckpoint(const std::string& dir,
                                                std::vector<std::string>* skipped = nullptr);

}  // namespace ocs::worker::train
