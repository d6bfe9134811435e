// The dataset readers on small files of each format, written by the tests.
#include "worker/train/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>

namespace ocs::worker::train {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string FreshFolder(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
}

// `n` CIFAR records: label bytes, then pixels all equal to the record index.
std::string CifarRecords(int n, int label_bytes, int classes) {
  std::string bytes;
  for (int i = 0; i < n; ++i) {
    for (int l = 0; l < label_bytes; ++l) bytes.push_back(static_cast<char>((i + l) % classes));
    bytes.append(3072, static_cast<char>(i));
  }
  return bytes;
}

std::string BigEndian(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string IdxImages(int n, int rows, int cols) {
  std::string bytes = BigEndian(0x803) + BigEndian(n) + BigEndian(rows) + BigEndian(cols);
  for (int i = 0; i < n * rows * cols; ++i) bytes.push_back(static_cast<char>(i % 251));
  return bytes;
}

std::string IdxLabels(int n) {
  std::string bytes = BigEndian(0x801) + BigEndian(n);
  for (int i = 0; i < n; ++i) bytes.push_back(static_cast<char>(i % 10));
  return bytes;
}

TEST(CifarReaderTest, ReadsCifar10Batches) {
  const std::string dir = FreshFolder("cifar10");
  for (int b = 1; b <= 5; ++b) {
    WriteFile(dir + "/data_batch_" + std::to_string(b) + ".bin", CifarRecords(3, 1, 10));
  }
  WriteFile(dir + "/test_batch.bin", CifarRecords(2, 1, 10));
  auto dataset = ReadCifar(dir, false, 10);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->train.images.sizes(), (at::IntArrayRef{15, 3, 32, 32}));
  EXPECT_EQ(dataset->test.size(), 2);
  EXPECT_EQ(dataset->train.labels[4].item<int64_t>(), 1);
  EXPECT_EQ(dataset->train.images[4][2][31][31].item<uint8_t>(), 1);  // record 1 of batch 2
}

TEST(CifarReaderTest, ReadsCifar100FineOrCoarseLabels) {
  const std::string dir = FreshFolder("cifar100");
  WriteFile(dir + "/train.bin", CifarRecords(4, 2, 20));
  WriteFile(dir + "/test.bin", CifarRecords(2, 2, 20));
  auto fine = ReadCifar(dir, true, 100);
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(fine->train.labels[0].item<int64_t>(), 1);  // the second label byte
  auto coarse = ReadCifar(dir, true, 20);
  ASSERT_TRUE(coarse.ok());
  EXPECT_EQ(coarse->train.labels[0].item<int64_t>(), 0);
}

TEST(CifarReaderTest, NamesTheFileAndTheProblem) {
  const std::string dir = FreshFolder("cifar10-bad");
  auto missing = ReadCifar(dir, false, 10);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("data_batch_1.bin: no such file"));
  WriteFile(dir + "/data_batch_1.bin", CifarRecords(2, 1, 10) + "xyz");
  EXPECT_THAT(std::string(ReadCifar(dir, false, 10).status().message()),
              HasSubstr("data_batch_1.bin: 6149 bytes is not a whole number of 3073-byte"));
  std::string bad_label = CifarRecords(1, 1, 10);
  bad_label[0] = 12;
  WriteFile(dir + "/data_batch_1.bin", bad_label);
  EXPECT_THAT(std::string(ReadCifar(dir, false, 10).status().message()),
              HasSubstr("record 0 has label 12, expected < 10"));
}

TEST(IdxReaderTest, ReadsRawAndGzippedFiles) {
  const std::string dir = FreshFolder("idx");
  WriteGzip(dir + "/train-images-idx3-ubyte.gz", IdxImages(6, 28, 28));
  WriteGzip(dir + "/train-labels-idx1-ubyte.gz", IdxLabels(6));
  WriteFile(dir + "/t10k-images-idx3-ubyte", IdxImages(3, 28, 28));
  WriteFile(dir + "/t10k-labels-idx1-ubyte", IdxLabels(3));
  auto dataset = ReadIdx(dir);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->train.images.sizes(), (at::IntArrayRef{6, 1, 28, 28}));
  EXPECT_EQ(dataset->test.size(), 3);
  EXPECT_EQ(dataset->train.labels[5].item<int64_t>(), 5);
  EXPECT_EQ(dataset->train.images[0][0][0][5].item<uint8_t>(), 5);
}

TEST(IdxReaderTest, RejectsMalformedFiles) {
  const std::string dir = FreshFolder("idx-bad");
  EXPECT_THAT(std::string(ReadIdx(dir).status().message()),
              HasSubstr("neither " + dir + "/train-images-idx3-ubyte nor"));
  WriteFile(dir + "/train-images-idx3-ubyte", IdxLabels(6));  // wrong magic
  WriteFile(dir + "/train-labels-idx1-ubyte", IdxLabels(6));
  EXPECT_THAT(std::string(ReadIdx(dir).status().message()), HasSubstr("not an idx image file"));
  WriteFile(dir + "/train-images-idx3-ubyte", IdxImages(6, 28, 28).substr(0, 500));
  EXPECT_THAT(std::string(ReadIdx(dir).status().message()),
              HasSubstr("header says 6 images of 28x28 but the file has 484 pixel bytes"));
  WriteFile(dir + "/train-images-idx3-ubyte", IdxImages(5, 28, 28));
  EXPECT_THAT(std::string(ReadIdx(dir).status().message()), HasSubstr("has 5 images but"));
  WriteFile(dir + "/train-labels-idx1-ubyte.gz", "not gzip at all");
  fs::remove(dir + "/train-labels-idx1-ubyte");
  EXPECT_FALSE(ReadIdx(dir).ok());
}

TEST(LoadDatasetTest, AppliesLimitsAndComputesStatistics) {
  common::DataSpec data;
  data.dataset = common::DatasetKind::kSynthetic;
  data.train_limit = 100;
  data.test_limit = 20;
  common::ModelSpec model;
  model.num_classes = 5;
  model.input_shape = {2, 8, 8};
  auto dataset = LoadDataset(data, model);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->train.images.sizes(), (at::IntArrayRef{100, 2, 8, 8}));
  EXPECT_EQ(dataset->test.size(), 20);
  EXPECT_EQ(dataset->mean.size(), 2u);
  EXPECT_GT(dataset->std[0], 0.0f);
  EXPECT_LT(dataset->train.labels.max().item<int64_t>(), 5);
}

TEST(LoadDatasetTest, ChecksThePathAndTheShape) {
  common::DataSpec data;
  data.dataset = common::DatasetKind::kCifar10;
  data.path = "/nonexistent/cifar";
  common::ModelSpec model;
  EXPECT_THAT(std::string(LoadDataset(data, model).status().message()),
              HasSubstr("spec.data.path: /nonexistent/cifar is not a folder"));
}

// 2^45 examples: their labels alone are 256 TiB, beyond any address space, so the allocation
// fails at once whatever the machine's memory or overcommit policy.
TEST(LoadDatasetTest, ASyntheticSetTooLargeForMemoryIsAnErrorNamingTheLimits) {
  common::DataSpec data;
  data.dataset = common::DatasetKind::kSynthetic;
  common::ModelSpec model;
  model.input_shape = {1, 8, 8};
  data.train_limit = int64_t{1} << 45;
  auto train = LoadDataset(data, model);
  EXPECT_EQ(train.status().code(), absl::StatusCode::kResourceExhausted) << train.status();
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr("spec.data.trainLimit 35184372088832, testLimit 0: the data set does not "
                        "fit in memory"));
  data.train_limit = 64;
  data.test_limit = int64_t{1} << 45;
  auto test = LoadDataset(data, model);
  EXPECT_EQ(test.status().code(), absl::StatusCode::kResourceExhausted) << test.status();
  EXPECT_THAT(std::string(test.status().message()), HasSubstr("testLimit 35184372088832"));
}

TEST(LoadDatasetTest, ReadsDebiansFashionMnist) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  common::DataSpec data;
  data.dataset = common::DatasetKind::kFashionMnist;
  data.path = "/usr/share/datasets/fashion-mnist";
  common::ModelSpec model;
  model.input_shape = {1, 28, 28};
  auto dataset = LoadDataset(data, model);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->train.size(), 60000);
  EXPECT_EQ(dataset->test.size(), 10000);
  EXPECT_NEAR(dataset->mean[0], 0.286, 0.001);  // the published Fashion-MNIST mean
}

}  // namespace
}  // namespace ocs::worker::train
