#include "worker/train/checkpoint.h"

#include <time.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <zlib.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crash_point.h"
#include "worker/engine/torch_error.h"
#include "worker/files/atomic_file.h"

namespace ocs::worker::train {
namespace {

namespace fs = std::filesystem;
constexpr int kKept = 2;
constexpr char kPrefix[] = "checkpoint-epoch-";
constexpr char kSuffix[] = ".pt";
// What a finished run leaves beside its checkpoints: they go with them when a run is set aside
// (model.frozen.pt is `ocs-worker model freeze`'s default name for the frozen model.pt).
constexpr const char* kRunArtifacts[] = {"model.pt", "report.json", "model.frozen.pt"};

struct CheckpointFile {
  int epoch = 0;
  fs::path path;
};

// Checkpoint files in `dir`, newest (highest epoch) first. Epochs are compared as numbers: the
// zero padding is five digits, and epoch 100000 has six.
std::vector<CheckpointFile> CheckpointFiles(const std::string& dir) {
  std::vector<CheckpointFile> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string filename = entry.path().filename().string();
    absl::string_view name = filename;
    int epoch = 0;
    if (absl::ConsumePrefix(&name, kPrefix) && absl::ConsumeSuffix(&name, kSuffix) &&
        absl::SimpleAtoi(name, &epoch)) {
      files.push_back({epoch, entry.path()});
    }
  }
  std::sort(files.begin(), files.end(),
            [](const CheckpointFile& a, const CheckpointFile& b) { return a.epoch > b.epoch; });
  return files;
}

// Keeps the checkpoint just written (`epoch`) and the newest kKept − 1 before it. Later epochs
// are never removed: in a resumed run they are files that failed to load, which the run
// overwrites when it gets there; a checkpoint is never removed for one of another run.
void RemoveOlderCheckpoints(const std::string& dir, int epoch) {
  int older = 0;
  std::error_code ec;
  for (const CheckpointFile& file : CheckpointFiles(dir)) {
    if (file.epoch < epoch && ++older >= kKept) fs::remove(file.path, ec);
  }
}

// A new folder in `dir` named after the time, for an earlier run's files.
absl::StatusOr<fs::path> NewEarlierRunFolder(const std::string& dir) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  for (int n = 1;; ++n) {
    const fs::path folder =
        fs::path(dir) / absl::StrCat("earlier-run-", stamp, n > 1 ? absl::StrCat("-", n) : "");
    std::error_code ec;
    if (fs::create_directory(folder, ec)) return folder;
    if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("creating ", folder.string()));
  }
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
    return absl::DataLossError(absl::StrCat(path.string(), ": unreadable checkpoint (",
                                            engine::DescribeTorchError(e), ")"));
  }
}

}  // namespace

absl::Status WriteCheckpoint(const std::string& dir, int epoch, const Checkpoint& checkpoint) {
  const std::string path =
      (fs::path(dir) / absl::StrFormat("%s%05d%s", kPrefix, epoch, kSuffix)).string();
  absl::Status written = files::WriteAtomically(path, [&](const std::string& temporary) {
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
      archive.save_to(temporary);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("writing ", temporary, ": ", engine::DescribeTorchError(e)));
    }
    common::CrashPoint(common::crash_point::kCheckpointWritten);
    return absl::OkStatus();
  });
  if (!written.ok()) return written;
  RemoveOlderCheckpoints(dir, epoch);
  RemoveUnfinishedWrites(dir);
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> ReadLatestCheckpoint(const std::string& dir,
                                                std::vector<std::string>* skipped) {
  const std::vector<CheckpointFile> files = CheckpointFiles(dir);
  if (files.empty()) return absl::NotFoundError(absl::StrCat("no checkpoint in ", dir));
  std::vector<std::string> problems;
  for (const CheckpointFile& file : files) {
    auto checkpoint = ReadCheckpoint(file.path);
    if (checkpoint.ok()) return checkpoint;
    problems.push_back(std::string(checkpoint.status().message()));
    if (skipped) skipped->push_back(problems.back());
  }
  return absl::DataLossError(
      absl::StrCat("none of the ", files.size(), " checkpoints in ", dir, " can be read (",
                   absl::StrJoin(problems, "; "),
                   "); remove them to start the job over from epoch 0, or restore a good copy"));
}

absl::StatusOr<std::string> SetAsideEarlierRun(const std::string& dir) {
  const std::vector<CheckpointFile> checkpoints = CheckpointFiles(dir);
  if (checkpoints.empty()) return std::string();
  absl::StatusOr<fs::path> folder = NewEarlierRunFolder(dir);
  if (!folder.ok()) return folder.status();
  std::vector<fs::path> moving;
  for (const CheckpointFile& file : checkpoints) moving.push_back(file.path);
  for (const char* name : kRunArtifacts) {
    std::error_code ec;
    if (fs::exists(fs::path(dir) / name, ec)) moving.push_back(fs::path(dir) / name);
  }
  for (const fs::path& from : moving) {
    std::error_code ec;
    fs::rename(from, *folder / from.filename(), ec);
    if (ec) {
      return absl::ErrnoToStatus(
          ec.value(), absl::StrCat("setting ", from.string(), " aside into ", folder->string()));
    }
  }
  return folder->string();
}

}  // namespace ocs::worker::train
