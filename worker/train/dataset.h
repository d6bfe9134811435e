// In-memory image datasets: a whole split is one uint8 tensor [N, C, H, W] with int64 labels [N];
// batches are sliced from it and preprocessed as batched tensor ops (preprocess.h). Readers for
// CIFAR-10/100 binary files, MNIST-format idx files (raw or .gz) and a seeded synthetic set.
// Every problem with a path or a file comes back as a status naming the file and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "absl/status/statusor.h"
#include "common/job_spec.h"

namespace ocs::worker::train {

struct ImageSet {
  at::Tensor images;  // uint8 [N, C, H, W]
  at::Tensor labels;  // int64 [N]
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

struct Dataset {
  ImageSet train;
  ImageSet test;
  int num_classes = 0;
  // Per-channel mean and standard deviation of the training images in [0, 1], for normalising.
  std::vector<float> mean;
  std::vector<float> std;
};

// Loads the dataset a job names, applies trainLimit/testLimit, and checks it against the
// model's input shape and class count. ResourceExhausted, naming the limits, for a data set that
// does not fit in memory (e.g. a synthetic one of a huge trainLimit).
absl::StatusOr<Dataset> LoadDataset(const common::DataSpec& data, const common::ModelSpec& model);

// The readers, one per format (exposed for tests).
absl::StatusOr<Dataset> ReadCifar(const std::string& folder, bool cifar100, int num_classes);
absl::StatusOr<Dataset> ReadIdx(const std::string& folder);
Dataset MakeSyntheticDataset(const std::vector<int>& shape, int num_classes, int64_t train_size,
                             int64_t test_size, uint64_t seed);

}  // namespace ocs::worker::train
