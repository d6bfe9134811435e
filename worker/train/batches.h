// One epoch of batches for one rank: like PyTorch's DistributedSampler, every rank shuffles the
// split with the same (seed, epoch) permutation and takes a disjoint strided shard, so together
// the ranks see each example at most once per epoch; batches are then sliced from the in-memory
// uint8 tensor and preprocessed as whole-batch tensor ops (on the training device).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include "worker/train/dataset.h"

namespace ocs::worker::train {

struct Normalization {
  std::vector<float> mean;
  std::vector<float> std;
};

class EpochBatches {
 public:
  // `local_batch` examples per step on this rank. Training drops the last partial batch so that
  // all ranks take the same number of steps; evaluation (shuffle = false) keeps it.
  EpochBatches(const ImageSet& set, int64_t local_batch, int rank, int world_size, uint64_t seed,
               int epoch, bool shuffle);

  int64_t size() const { return batches_; }
  int64_t examples() const { return static_cast<int64_t>(indices_.size()); }
  // Images (uint8, on the CPU) and labels of batch `i`.
  std::pair<at::Tensor, at::Tensor> Batch(int64_t i) const;

 private:
  const ImageSet& set_;
  int64_t local_batch_;
  int64_t batches_;
  std::vector<int64_t> indices_;  // this rank's shard, in order
};

// uint8 [B, C, H, W] -> normalised float on `device`; with `augment`, a random crop with 4 pixels
// of zero padding and a random horizontal flip per image, all as batched ops.
at::Tensor Preprocess(const at::Tensor& images, const Normalization& normalization, bool augment,
                      at::Generator& generator, c10::Device device);

}  // namespace ocs::worker::train
