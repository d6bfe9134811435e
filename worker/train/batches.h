// One epoch of batches for one rank: like PyTorch's DistributedSampler, every rank shuffles the
// split with the same (seed, epoch) permutation and takes a disjoint strided shard, so together
// the ranks see each example at most once per epoch; batches are then gathered from the uint8
// split (resident on the training device) and preprocessed as whole-batch tensor ops there.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>
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
  int64_t examples() const { return index_.size(0); }
  // Batch `i`'s first position in this rank's shard and its number of examples.
  std::pair<int64_t, int64_t> Range(int64_t i) const;
  // Images (uint8) and labels of batch `i`, on the device the split lives on.
  std::pair<at::Tensor, at::Tensor> Batch(int64_t i) const;

 private:
  const ImageSet& set_;
  int64_t local_batch_;
  int64_t batches_;
  at::Tensor index_;  // this rank's shard, in order, on the split's device: no copy per step
};

// Random crop offsets (in [0, 2·padding]) and horizontal flips, one entry per image, on the
// training device.
struct Augmentation {
  at::Tensor dy, dx, flip;
  Augmentation Slice(int64_t begin, int64_t count) const;
};

// Draws the augmentation of every batch of an epoch at once, batch after batch, from `generator`
// on the CPU (a run's random stream does not depend on the device), and moves it to `device` in
// one copy: no host work or transfer per step.
Augmentation DrawAugmentation(const EpochBatches& batches, at::Generator& generator,
                              c10::Device device);

// uint8 [B, C, H, W] -> normalised float on the training device; with an augmentation, a crop
// with 4 pixels of zero padding and a flip per image, all as batched ops. NHWC on GPUs.
class Preprocessor {
 public:
  Preprocessor(const Normalization& normalization, c10::Device device);
  at::Tensor operator()(const at::Tensor& images, const Augmentation* augmentation) const;

 private:
  c10::Device device_;
  at::Tensor mean_, std_;  // [1, C, 1, 1] on the device
};

}  // namespace ocs::worker::train
