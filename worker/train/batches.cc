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
  std::vector<int64_t> shard;
  for (int64_t i = 0; i < per_rank; ++i) shard.push_back(order[i * world_size + rank]);
  if (!shuffle && rank < set.size() % world_size) {  // evaluation covers every example
    shard.push_back(order[per_rank * world_size + rank]);
  }
  index_ = at::tensor(shard, at::kLong).to(set.images.device());
  batches_ = shuffle ? examples() / local_batch_ : (examples() + local_batch_ - 1) / local_batch_;
}

std::pair<int64_t, int64_t> EpochBatches::Range(int64_t i) const {
  const int64_t begin = i * local_batch_;
  return {begin, std::min<int64_t>(local_batch_, examples() - begin)};
}

std::pair<at::Tensor, at::Tensor> EpochBatches::Batch(int64_t i) const {
  const auto [begin, count] = Range(i);
  const at::Tensor index = index_.narrow(0, begin, count);
  return {set_.images.index_select(0, index), set_.labels.index_select(0, index)};
}

Augmentation Augmentation::Slice(int64_t begin, int64_t count) const {
  return {dy.narrow(0, begin, count), dx.narrow(0, begin, count), flip.narrow(0, begin, count)};
}

Augmentation DrawAugmentation(const EpochBatches& batches, at::Generator& generator,
                              c10::Device device) {
  std::vector<at::Tensor> dy, dx, flip;
  const auto cpu = at::TensorOptions().dtype(at::kLong);
  for (int64_t i = 0; i < batches.size(); ++i) {
    const int64_t b = batches.Range(i).second;
    dy.push_back(at::randint(0, 2 * kCropPadding + 1, {b}, generator, cpu));
    dx.push_back(at::randint(0, 2 * kCropPadding + 1, {b}, generator, cpu));
    flip.push_back(at::rand({b}, generator).lt(0.5).to(at::kLong));
  }
  // One transfer: [3, N] packed, then split on the device.
  const at::Tensor packed = at::stack({at::cat(dy), at::cat(dx), at::cat(flip)}).to(device);
  return {packed[0], packed[1], packed[2].to(at::kBool)};
}

Preprocessor::Preprocessor(const Normalization& normalization, c10::Device device)
    : device_(device) {
  const auto options = at::TensorOptions().dtype(at::kFloat);
  const int64_t channels = static_cast<int64_t>(normalization.mean.size());
  mean_ = at::tensor(normalization.mean, options).view({1, channels, 1, 1}).to(device);
  std_ = at::tensor(normalization.std, options).view({1, channels, 1, 1}).to(device);
}

at::Tensor Preprocessor::operator()(const at::Tensor& images,
                                    const Augmentation* augmentation) const {
  at::Tensor x = images.to(device_, /*non_blocking=*/true).to(at::kFloat).div_(255.0);
  if (augmentation) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const at::Tensor padded =
        at::constant_pad_nd(x, {kCropPadding, kCropPadding, kCropPadding, kCropPadding}, 0.0);
    const auto on_device = at::TensorOptions().dtype(at::kLong).device(device_);
    const at::Tensor rows =
        (augmentation->dy.view({b, 1}) + at::arange(h, on_device)).view({b, 1, h, 1});
    const at::Tensor cols =
        (augmentation->dx.view({b, 1}) + at::arange(w, on_device)).view({b, 1, 1, w});
    x = padded.gather(2, rows.expand({b, c, h, w + 2 * kCropPadding}))
            .gather(3, cols.expand({b, c, h, w}));
    x = at::where(augmentation->flip.view({b, 1, 1, 1}), x.flip({3}), x);
  }
  x = (x - mean_) / std_;
  // GPU convolutions run fastest on NHWC activations, matching the channels-last weights.
  return device_.is_cuda() ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

}  // namespace ocs::worker::train
