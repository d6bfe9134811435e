// CIFAR-10 and CIFAR-100 in their binary formats: records of label byte(s) + 3072 CHW pixels.
//   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin, test_batch.bin; 1 label byte
//   CIFAR-100: train.bin, test.bin; coarse then fine label byte
#include <cstring>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "worker/train/dataset.h"
#include "worker/train/dataset_files.h"

namespace ocs::worker::train {
namespace {

constexpr int64_t kPixels = 3 * 32 * 32;
constexpr size_t kMaxFileBytes = 512u << 20;

// Appends the records of one file; `label_offset` picks the label byte (CIFAR-100: 0 coarse,
// 1 fine).
absl::Status ReadRecords(const std::string& path, int label_bytes, int label_offset,
                         int num_classes, std::vector<uint8_t>* pixels,
                         std::vector<int64_t>* labels) {
  auto bytes = ReadWholeFile(path, kMaxFileBytes);
  if (!bytes.ok()) return bytes.status();
  const int64_t record = label_bytes + kPixels;
  if (bytes->empty() || bytes->size() % record != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", bytes->size(), " bytes is not a whole number of ", record,
                     "-byte CIFAR records (", label_bytes, " label byte(s) + 3072 pixels)"));
  }
  const int64_t count = static_cast<int64_t>(bytes->size()) / record;
  const auto* data = reinterpret_cast<const uint8_t*>(bytes->data());
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* r = data + i * record;
    const int label = r[label_offset];
    if (label >= num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": record ", i, " has label ", label, ", expected < ", num_classes));
    }
    labels->push_back(label);
    pixels->insert(pixels->end(), r + label_bytes, r + record);
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageSet> ReadSplit(const std::string& folder, const std::vector<std::string>& files,
                                   bool cifar100, int num_classes) {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  const int label_bytes = cifar100 ? 2 : 1;
  const int label_offset = cifar100 && num_classes == 100 ? 1 : 0;
  for (const std::string& file : files) {
    if (absl::Status s = ReadRecords(absl::StrCat(folder, "/", file), label_bytes, label_offset,
                                     num_classes, &pixels, &labels);
        !s.ok()) {
      return s;
    }
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  ImageSet set;
  set.images = at::empty({n, 3, 32, 32}, at::kByte);
  std::memcpy(set.images.data_ptr<uint8_t>(), pixels.data(), pixels.size());
  set.labels = at::tensor(labels, at::kLong);
  return set;
}

}  // namespace

absl::StatusOr<Dataset> ReadCifar(const std::string& folder, bool cifar100, int num_classes) {
  const std::vector<std::string> train_files =
      cifar100
          ? std::vector<std::string>{"train.bin"}
          : std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                     "data_batch_4.bin", "data_batch_5.bin"};
  const std::vector<std::string> test_files = {cifar100 ? "test.bin" : "test_batch.bin"};
  Dataset dataset;
  dataset.num_classes = num_classes;
  auto train = ReadSplit(folder, train_files, cifar100, num_classes);
  if (!train.ok()) return train.status();
  auto test = ReadSplit(folder, test_files, cifar100, num_classes);
  if (!test.ok()) return test.status();
  dataset.train = *std::move(train);
  dataset.test = *std::move(test);
  return dataset;
}

}  // namespace ocs::worker::train
