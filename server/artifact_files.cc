#include "server/artifact_files.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/artifact_checksum.h"
#include "server/ids.h"

namespace ocs::server {
namespace {

// A full disk (or quota) is the one failure that may pass: ResourceExhausted, which the worker
// waits out while it still has the file. Anything else is Unavailable.
absl::Status DiskError(absl::string_view action, const std::string& path, int error) {
  const std::string message = absl::StrCat(action, " ", path, ": ", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the coordinator's artifact disk is full: ", message));
  }
  return absl::UnavailableError(message);
}

}  // namespace

bool ArtifactFiles::AllowedName(absl::string_view name) {
  return name == "model.pt" || name == "report.json";
}

ArtifactFiles::Upload::Upload(std::FILE* file, std::string temporary, std::string path)
    : file_(file), temporary_(std::move(temporary)), path_(std::move(path)) {}

ArtifactFiles::Upload::~Upload() {
  if (file_) std::fclose(file_);
  if (!committed_) std::remove(temporary_.c_str());
}

absl::Status ArtifactFiles::Upload::Append(absl::string_view data) {
  if (size_ + static_cast<int64_t>(data.size()) > kMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("an artifact may be at most ", kMaxBytes, " bytes"));
  }
  if (std::fwrite(data.data(), 1, data.size(), file_) != data.size()) {
    return DiskError("writing", temporary_, errno);
  }
  size_ += static_cast<int64_t>(data.size());
  crc32_ = api::ExtendCrc32(crc32_, data);
  return absl::OkStatus();
}

absl::Status ArtifactFiles::Upload::CheckWhole(const Expected& expected) const {
  if (size_ != expected.size) {
    return absl::DataLossError(absl::StrCat("received ", size_, " of ", expected.size,
                                            " bytes: the upload was cut short"));
  }
  if (crc32_ != expected.crc32) {
    return absl::DataLossError(absl::StrFormat(
        "received %d bytes with CRC-32 %08x, the sender's file has %08x: the upload was damaged",
        size_, crc32_, expected.crc32));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ArtifactFiles::Upload::Commit(const Expected& expected) {
  if (absl::Status whole = CheckWhole(expected); !whole.ok()) return whole;
  // Buffered bytes meet a full disk here at the latest.
  const bool flushed = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  const int flush_error = errno;
  std::fclose(file_);
  file_ = nullptr;
  if (!flushed) return DiskError("writing", temporary_, flush_error);
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0)
    return DiskError("storing", path_, errno);
  committed_ = true;
  return path_;
}

absl::StatusOr<std::unique_ptr<ArtifactFiles::Upload>> ArtifactFiles::Begin(
    const std::string& job_id, const std::string& name) const {
  if (!AllowedName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact \"", name, "\": a job produces model.pt and report.json only"));
  }
  const std::string folder = absl::StrCat(root_, "/", job_id);
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return DiskError("cannot create", folder, ec.value());
  const std::string temporary = absl::StrCat(folder, "/.", name, ".", RandomIdSuffix(8));
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (!file) return DiskError("cannot write", temporary, errno);
  return std::make_unique<Upload>(file, temporary, absl::StrCat(folder, "/", name));
}

}  // namespace ocs::server
