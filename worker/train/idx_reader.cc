// MNIST-format idx files (MNIST, Fashion-MNIST), raw or gzip-compressed:
//   images: magic 0x00000803, count, rows, cols (big-endian uint32), then count*rows*cols bytes
//   labels: magic 0x00000801, count, then count bytes
#include <cstring>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "worker/train/dataset.h"
#include "worker/train/dataset_files.h"

namespace ocs::worker::train {
namespace {

constexpr size_t kMaxFileBytes = 1u << 30;
constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

uint32_t BigEndian(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + offset;
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

absl::StatusOr<at::Tensor> ReadImages(const std::string& path) {
  auto bytes = ReadWholeFile(path, kMaxFileBytes);
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() < 16 || BigEndian(*bytes, 0) != kImagesMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an idx image file (expected magic 0x00000803)"));
  }
  const int64_t n = BigEndian(*bytes, 4), rows = BigEndian(*bytes, 8), cols = BigEndian(*bytes, 12);
  if (rows == 0 || cols == 0 || rows > 8192 || cols > 8192 ||
      static_cast<int64_t>(bytes->size()) - 16 != n * rows * cols) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header says ", n, " images of ", rows,
                                                   "x", cols, " but the file has ",
                                                   bytes->size() - 16, " pixel bytes"));
  }
  at::Tensor images = at::empty({n, 1, rows, cols}, at::kByte);
  std::memcpy(images.data_ptr<uint8_t>(), bytes->data() + 16, n * rows * cols);
  return images;
}

absl::StatusOr<at::Tensor> ReadLabels(const std::string& path) {
  auto bytes = ReadWholeFile(path, kMaxFileBytes);
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() < 8 || BigEndian(*bytes, 0) != kLabelsMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an idx label file (expected magic 0x00000801)"));
  }
  const int64_t n = BigEndian(*bytes, 4);
  if (static_cast<int64_t>(bytes->size()) - 8 != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header says ", n, " labels but the file has ", bytes->size() - 8));
  }
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = static_cast<uint8_t>((*bytes)[8 + i]);
    if (labels[i] > 9) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": label ", labels[i], " at ", i, " is not in 0..9"));
    }
  }
  return at::tensor(labels, at::kLong);
}

absl::StatusOr<ImageSet> ReadSplit(const std::string& folder, const std::string& prefix) {
  auto images_path = FindPlainOrGzip(absl::StrCat(folder, "/", prefix, "-images-idx3-ubyte"));
  if (!images_path.ok()) return images_path.status();
  auto labels_path = FindPlainOrGzip(absl::StrCat(folder, "/", prefix, "-labels-idx1-ubyte"));
  if (!labels_path.ok()) return labels_path.status();
  auto images = ReadImages(*images_path);
  if (!images.ok()) return images.status();
  auto labels = ReadLabels(*labels_path);
  if (!labels.ok()) return labels.status();
  if (images->size(0) != labels->size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(*images_path, " has ", images->size(0),
                                                   " images but ", *labels_path, " has ",
                                                   labels->size(0), " labels"));
  }
  return ImageSet{*std::move(images), *std::move(labels)};
}

}  // namespace

absl::StatusOr<Dataset> ReadIdx(const std::string& folder) {
  Dataset dataset;
  dataset.num_classes = 10;
  auto train = ReadSplit(folder, "train");
  if (!train.ok()) return train.status();
  auto test = ReadSplit(folder, "t10k");
  if (!test.ok()) return test.status();
  dataset.train = *std::move(train);
  dataset.test = *std::move(test);
  return dataset;
}

}  // namespace ocs::worker::train
