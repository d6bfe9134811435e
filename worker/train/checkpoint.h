// Checkpoints of a training run: weights, BatchNorm statistics, the optimizer's momentum buffers
// and everything the loop needs to continue (epoch, iteration — hence the schedule position —,
// phase, the stability history and recent masks, the prune mask, accuracies around the prune).
// Written atomically (a temporary file flushed to the disk, then renamed) as one LibTorch archive;
// the one just written and the one before it are kept. Random state needs no saving: data order
// and augmentation are seeded by (seed, epoch).
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

// Writes `checkpoint` as DIR/checkpoint-epoch-NNNNN.pt and removes the checkpoints of earlier
// epochs but the newest one. Checkpoints of later epochs stay: only a resume that could not read
// them leaves such files behind, and a checkpoint is never removed in favour of another run's.
absl::Status WriteCheckpoint(const std::string& dir, int epoch, const Checkpoint& checkpoint);

// The newest checkpoint in `dir` that loads. A corrupt newest file is skipped (with its error in
// `skipped`) in favour of the one before. NotFound when `dir` holds no checkpoint; DataLoss naming
// every file and its problem when none of them loads (starting over from epoch 0 then would
// silently throw the run away).
absl::StatusOr<Checkpoint> ReadLatestCheckpoint(const std::string& dir,
                                                std::vector<std::string>* skipped = nullptr);

// For a run that starts from epoch 0 in `dir`: moves the checkpoints an earlier run left there,
// with its model.pt, report.json and model.frozen.pt, into a new folder DIR/earlier-run-<UTC
// time>/ and returns that folder ("" when `dir` holds no checkpoint). The two runs' checkpoints
// never mix (a resume would take the newest, whichever run wrote it) and nothing is lost.
absl::StatusOr<std::string> SetAsideEarlierRun(const std::string& dir);

}  // namespace ocs::worker::train
