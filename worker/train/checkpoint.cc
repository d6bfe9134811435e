#include "worker/train/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <zlib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/crash_point.h"

namespace ocs::worker::train {
namespace {

namespace fs = std::filesystem;
constexpr int kKept = 2;
constexpr char kPrefix[] = "checkpoint-epoch-";

// Checkpoint files in `dir`, newest (highest epoch) first.
std::vector<fs::path> CheckpointFiles(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, kPrefix) && absl::EndsWith(name, ".pt"))
      files.push_back(entry.path());
  }
  std::sort(files.rbegin(), files.rend());  // zero-padded epochs sort by name
  return files;
}

// A crash between writing a checkpoint and renaming it into place leaves its temporary file; the
// reader never looks at those, the next write clears them away. (Only rank 0 writes.)
void RemoveUnfinishedWrites(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, kPrefix) && absl::EndsWith(name, ".pt.tmp")) {
      fs::remove(entry.path(), ec);
    }
  }
}

// CRC-32 of the metadata and every tensor's key and bytes. LibTorch's archive does not notice
// bytes changed inside a tensor record: a flipped bit would resume a job from damaged weights.
std::string ContentChecksum(const Checkpoint& checkpoint) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto add = [&crc](const void* data, size_t size) {
    crc = crc32(crc, static_cast<const Bytef*>(data), static_cast<uInt>(size));
  };
  add(checkpoint.meta_json.data(), checkpoint.meta_json.size());
  for (const auto& [key, tensor] : checkpoint.tensors) {  // a std::map: always in key order
    add(key.data(), key.size());
    const at::Tensor bytes = tensor.detach().to(at::kCPU).contiguous();
    add(bytes.data_ptr(), bytes.nbytes());
  }
  return absl::StrFormat("%08x", crc);
}

absl::StatusOr<Checkpoint> ReadCheckpoint(const fs::path& path) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    c10::IValue meta, keys;
    archive.read("meta", meta);
    archive.read("tensor_keys", keys);
    Checkpoint checkpoint{meta.toStringRef(), {}};
    for (absl::string_view key : absl::StrSplit(keys.toStringRef(), '\n', absl::SkipEmpty())) {
      at::Tensor tensor;
      archive.read(std::string(key), tensor);
      checkpoint.tensors.emplace(std::string(key), tensor);
    }
    c10::IValue stored;
    if (archive.try_read("crc32", stored) && stored.toStringRef() != ContentChecksum(checkpoint)) {
      return absl::DataLossError(absl::StrCat(path.string(), ": damaged checkpoint (checksum ",
                                              ContentChecksum(checkpoint), ", written as ",
                                              stored.toStringRef(), ")"));
    }
    return checkpoint;
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": unreadable checkpoint (", e.what(), ")"));
  }
}

}  // namespace

absl::Status WriteCheckpoint(const std::string& dir, int epoch, const Checkpoint& checkpoint) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat(dir, ": ", ec.message()));
  const fs::path final_path = fs::path(dir) / absl::StrFormat("%s%05d.pt", kPrefix, epoch);
  const fs::path temporary = fs::path(final_path.string() + ".tmp");
  try {
    torch::serialize::OutputArchive archive;
    archive.write("meta", c10::IValue(checkpoint.meta_json));
    std::vector<std::string> keys;
    for (const auto& [key, tensor] : checkpoint.tensors) {
      archive.write(key, tensor.detach().to(at::kCPU), /*is_buffer=*/true);
      keys.push_back(key);
    }
    archive.write("tensor_keys", c10::IValue(absl::StrJoin(keys, "\n")));
    archive.write("crc32", c10::IValue(ContentChecksum(checkpoint)));
    archive.save_to(temporary.string());
  } catch (const std::exception& e) {
    fs::remove(temporary, ec);
    return absl::UnavailableError(absl::StrCat("writing ", temporary.string(), ": ", e.what()));
  }
  common::CrashPoint(common::crash_point::kCheckpointWritten);
  fs::rename(temporary, final_path, ec);
  if (ec)
    return absl::UnavailableError(
        absl::StrCat("renaming to ", final_path.string(), ": ", ec.message()));
  const std::vector<fs::path> files = CheckpointFiles(dir);
  for (size_t i = kKept; i < files.size(); ++i) fs::remove(files[i], ec);
  RemoveUnfinishedWrites(dir);
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> ReadLatestCheckpoint(const std::string& dir,
                                                std::vector<std::string>* skipped) {
  for (const fs::path& path : CheckpointFiles(dir)) {
    auto checkpoint = ReadCheckpoint(path);
    if (checkpoint.ok()) return checkpoint;
    if (skipped) skipped->push_back(std::string(checkpoint.status().message()));
  }
  return absl::NotFoundError(absl::StrCat("no readable checkpoint in ", dir));
}

}  // namespace ocs::worker::train
