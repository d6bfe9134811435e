// The coordinator's artifact folder, <data-dir>/artifacts/<job id>/<name>: what rank 0's worker
// uploads when a job's training ends (the pruned model, its report) and the Job API serves. An
// upload is written under a temporary name, checked against the size and CRC-32 its sender
// announced, flushed to disk and renamed when complete, so a download never sees half a file and
// a crash or a cut upload leaves none.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ocs::server {

class ArtifactFiles {
 public:
  static constexpr int64_t kMaxBytes = int64_t{4} << 30;  // far above any CNN we prune

  explicit ArtifactFiles(std::string root) : root_(std::move(root)) {}

  // The names a job may produce: model.pt and report.json.
  static bool AllowedName(absl::string_view name);

  // What the sender says the whole file is.
  struct Expected {
    int64_t size = 0;
    uint32_t crc32 = 0;  // api::ExtendCrc32 over the whole file
  };

  class Upload {
   public:
    Upload(std::FILE* file, std::string temporary, std::string path);
    ~Upload();  // removes the temporary file unless committed
    // InvalidArgument past kMaxBytes, ResourceExhausted when the disk is full, Unavailable when
    // it refuses otherwise.
    absl::Status Append(absl::string_view data);
    // DataLoss when the bytes received are not `expected` (the upload was cut short or damaged);
    // otherwise flushes to disk and renames into place, and returns the final path.
    absl::StatusOr<std::string> Commit(const Expected& expected);
    int64_t size() const { return size_; }

   private:
    absl::Status CheckWhole(const Expected& expected) const;

    std::FILE* file_;
    std::string temporary_, path_;
    int64_t size_ = 0;
    uint32_t crc32_ = 0;  // of the bytes appended so far
    bool committed_ = false;
  };

  // InvalidArgument for a name other than the allowed ones; ResourceExhausted when the disk is
  // full, Unavailable when the folder cannot be written otherwise.
  absl::StatusOr<std::unique_ptr<Upload>> Begin(const std::string& job_id,
                                                const std::string& name) const;

 private:
  std::string root_;
};

}  // namespace ocs::server
