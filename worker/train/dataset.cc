#include "worker/train/dataset.h"

#include <filesystem>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"
#include "worker/engine/torch_error.h"

namespace ocs::worker::train {
namespace {

ImageSet Limit(const ImageSet& set, int64_t limit) {
  if (limit <= 0 || limit >= set.size()) return set;
  return {set.images.narrow(0, 0, limit).clone(), set.labels.narrow(0, 0, limit).clone()};
}

void ComputeChannelStats(Dataset* dataset) {
  const at::Tensor pixels = dataset->train.images.to(at::kFloat).div_(255.0);
  const at::Tensor mean = pixels.mean({0, 2, 3});
  const at::Tensor std = pixels.std({0, 2, 3}).clamp_min(1e-3);
  dataset->mean.assign(mean.data_ptr<float>(), mean.data_ptr<float>() + mean.numel());
  dataset->std.assign(std.data_ptr<float>(), std.data_ptr<float>() + std.numel());
}

}  // namespace

Dataset MakeSyntheticDataset(const std::vector<int>& shape, int num_classes, int64_t train_size,
                             int64_t test_size, uint64_t seed) {
  // Each class has its own per-channel brightness pattern plus noise: learnable, not trivial.
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const at::Tensor prototypes = at::rand({num_classes, shape[0], shape[1], shape[2]}, generator);
  auto make = [&](int64_t n) {
    const at::Tensor labels = at::randint(0, num_classes, {n}, generator, at::kLong);
    const at::Tensor noise = at::randn({n, shape[0], shape[1], shape[2]}, generator) * 0.25;
    const at::Tensor images = (prototypes.index_select(0, labels) + noise).clamp(0, 1) * 255;
    return ImageSet{images.round().to(at::kByte), labels};
  };
  Dataset dataset;
  dataset.num_classes = num_classes;
  dataset.train = make(train_size);
  dataset.test = make(test_size);
  return dataset;
}

namespace {

absl::StatusOr<Dataset> LoadAndCheck(const common::DataSpec& data, const common::ModelSpec& model) {
  using common::DatasetKind;
  absl::StatusOr<Dataset> loaded;
  if (data.dataset != DatasetKind::kSynthetic) {
    std::error_code ec;
    if (!std::filesystem::is_directory(data.path, ec)) {
      return absl::NotFoundError(absl::StrCat("spec.data.path: ", data.path, " is not a folder"));
    }
  }
  switch (data.dataset) {
    case DatasetKind::kCifar10:
      loaded = ReadCifar(data.path, false, 10);
      break;
    case DatasetKind::kCifar100:
      loaded = ReadCifar(data.path, true, model.num_classes);
      break;
    case DatasetKind::kFashionMnist:
    case DatasetKind::kMnist:
      loaded = ReadIdx(data.path);
      break;
    case DatasetKind::kSynthetic:
      loaded = MakeSyntheticDataset(
          model.input_shape, model.num_classes,
          data.train_limit > 0 ? data.train_limit : common::kSyntheticTrainExamples,
          data.test_limit > 0 ? data.test_limit : common::kSyntheticTestExamples, 1234);
      break;
  }
  if (!loaded.ok()) return loaded.status();
  loaded->train = Limit(loaded->train, data.train_limit);
  loaded->test = Limit(loaded->test, data.test_limit);
  const auto& s = model.input_shape;
  const at::IntArrayRef got = loaded->train.images.sizes().slice(1);
  if (got != at::IntArrayRef{s[0], s[1], s[2]}) {
    return absl::InvalidArgumentError(absl::StrCat("spec.model.inputShape [", s[0], ", ", s[1],
                                                   ", ", s[2], "] does not match the data's [",
                                                   got[0], ", ", got[1], ", ", got[2], "]"));
  }
  if (loaded->train.size() == 0 || loaded->test.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(data.path, ": a split is empty"));
  }
  ComputeChannelStats(&*loaded);
  return loaded;
}

// LibTorch reports a tensor it cannot allocate (a split too large for memory) by throwing; a job's
// sizes must not abort the rank.
absl::Status DataSizeError(const common::DataSpec& data, const c10::Error& error) {
  const std::string what = error.what_without_backtrace();
  const bool allocation = engine::IsOutOfMemory(error);
  const std::string message = absl::StrCat(
      "spec.data.trainLimit ", data.train_limit, ", testLimit ", data.test_limit, ": the data set ",
      allocation ? "does not fit in memory" : "cannot be made", " (", what, ")");
  return allocation ? absl::ResourceExhaustedError(message) : absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<Dataset> LoadDataset(const common::DataSpec& data, const common::ModelSpec& model) {
  try {
    return LoadAndCheck(data, model);
  } catch (const c10::Error& error) {
    return DataSizeError(data, error);
  }
}

}  // namespace ocs::worker::train
