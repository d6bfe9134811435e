#include "server/artifact_files.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "server/ids.h"

namespace ocs::server {

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
    return absl::ResourceExhaustedError(
        absl::StrCat("an artifact may be at most ", kMaxBytes, " bytes"));
  }
  if (std::fwrite(data.data(), 1, data.size(), file_) != data.size()) {
    return absl::UnavailableError(absl::StrCat("writing ", temporary_, ": ", std::strerror(errno)));
  }
  size_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ArtifactFiles::Upload::Commit() {
  const bool flushed = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  std::fclose(file_);
  file_ = nullptr;
  if (!flushed || std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("storing ", path_, ": ", std::strerror(errno)));
  }
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
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", folder, ": ", ec.message()));
  const std::string temporary = absl::StrCat(folder, "/.", name, ".", RandomIdSuffix(8));
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (!file) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", temporary, ": ", std::strerror(errno)));
  }
  return std::make_unique<Upload>(file, temporary, absl::StrCat(folder, "/", name));
}

}  // namespace ocs::server
