#include "worker/train/batches.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <ATen/ATen.h>

namespace ocs::worker::train {
namespace {

constexpr int64_t kCropPadding = 4;

}  // namespace

EpochBatches::EpochBatches(const ImageSet& set, int64_t local_batch, int rank, int world_size,
                           uint64_t seed, int epoch, bool shuffle)
    : set_(set), local_batch_(local_batch) {
  std::vector<int64_t> order(set.size());
  std::iota(order.begin(), order.end(), 0);
  if (shuffle) {
    std::mt19937_64 random(seed * 1000003 + static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), random);
  }
  // Equal shards: the tail that does not divide by the world size is left out.
  const int64_t per_rank = set.size() / world_size;
  for (int64_t i = 0; i < per_rank; ++i) indices_.push_back(order[i * world_size + rank]);
  if (!shuffle && rank < set.size() % world_size) {  // evaluation covers every example
    indices_.push_back(order[per_rank * world_size + rank]);
  }
  batches_ = shuffle ? examples() / local_batch_ : (examples() + local_batch_ - 1) / local_batch_;
}

std::pair<at::Tensor, at::Tensor> EpochBatches::Batch(int64_t i) const {
  const int64_t begin = i * local_batch_;
  const int64_t end = std::min<int64_t>(begin + local_batch_, examples());
  const at::Tensor index =
      at::from_blob(const_cast<int64_t*>(indices_.data()) + begin, {end - begin}, at::kLong);
  return {set_.images.index_select(0, index), set_.labels.index_select(0, index)};
}

at::Tensor Preprocess(const at::Tensor& images, const Normalization& normalization, bool augment,
                      at::Generator& generator, c10::Device device) {
  at::Tensor x = images.to(device, /*non_blocking=*/true).to(at::kFloat).div_(255.0);
  if (augment) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const at::Tensor padded =
        at::constant_pad_nd(x, {kCropPadding, kCropPadding, kCropPadding, kCropPadding}, 0.0);
    // Per-image crop offsets in [0, 2·padding] and flips, drawn on the CPU from the run's
    // generator (reproducible on any device), then gathered on the device in two passes.
    const auto cpu = at::TensorOptions().dtype(at::kLong);
    const at::Tensor dy = at::randint(0, 2 * kCropPadding + 1, {b}, generator, cpu).to(device);
    const at::Tensor dx = at::randint(0, 2 * kCropPadding + 1, {b}, generator, cpu).to(device);
    const at::Tensor flip = at::rand({b}, generator).lt(0.5).to(device);
    const auto on_device = at::TensorOptions().dtype(at::kLong).device(device);
    const at::Tensor rows = (dy.view({b, 1}) + at::arange(h, on_device)).view({b, 1, h, 1});
    const at::Tensor cols = (dx.view({b, 1}) + at::arange(w, on_device)).view({b, 1, 1, w});
    x = padded.gather(2, rows.expand({b, c, h, w + 2 * kCropPadding}))
            .gather(3, cols.expand({b, c, h, w}));
    x = at::where(flip.view({b, 1, 1, 1}), x.flip({3}), x);
  }
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  const int64_t channels = static_cast<int64_t>(normalization.mean.size());
  const at::Tensor mean = at::tensor(normalization.mean, options).view({1, channels, 1, 1});
  const at::Tensor std = at::tensor(normalization.std, options).view({1, channels, 1, 1});
  x = (x - mean) / std;
  // GPU convolutions run fastest on NHWC activations, matching the channels-last weights.
  return device.is_cuda() ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

}  // namespace ocs::worker::train
