#include "worker/files/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace ocs::worker::files {
namespace {

namespace fs = std::filesystem;

absl::Status FileError(absl::string_view action, const std::string& path, int error) {
  return absl::ErrnoToStatus(error, absl::StrCat(action, " \"", path, "\""));
}

// Writes all of `contents` to `fd`, resuming after signals and short writes.
bool WriteAll(int fd, absl::string_view contents) {
  while (!contents.empty()) {
    const ssize_t written = ::write(fd, contents.data(), contents.size());
    if (written < 0 && errno == EINTR) continue;
    if (written == 0) errno = EIO;
    if (written <= 0) return false;
    contents.remove_prefix(static_cast<size_t>(written));
  }
  return true;
}

// Flushes the file's bytes to the disk. A full disk or a failing device often shows here only.
absl::Status Sync(const std::string& temporary, const std::string& path) {
  const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError("writing", path, errno);
  const bool synced = ::fsync(fd) == 0;
  const int error = errno;
  if (::close(fd) != 0 && synced) return FileError("writing", path, errno);
  return synced ? absl::OkStatus() : FileError("writing", path, error);
}

// Best effort: makes the rename durable. Some file systems refuse fsync on a folder; the file is
// in place either way.
void SyncFolder(const fs::path& folder) {
  const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string TemporaryPath(const std::string& path) { return path + ".tmp"; }

absl::Status WriteAtomically(const std::string& path, const FileWriter& write) {
  const fs::path destination(path);
  std::error_code ec;
  if (destination.has_parent_path()) fs::create_directories(destination.parent_path(), ec);
  if (ec) return FileError("creating the folder of", path, ec.value());
  const std::string temporary = TemporaryPath(path);
  absl::Status status = write(temporary);
  if (status.ok()) status = Sync(temporary, path);
  if (status.ok() && std::rename(temporary.c_str(), path.c_str()) != 0) {
    status = FileError("renaming a temporary file to", path, errno);
  }
  if (!status.ok()) {
    fs::remove(temporary, ec);
    return status;
  }
  SyncFolder(destination.parent_path());
  return absl::OkStatus();
}

absl::Status WriteAtomically(const std::string& path, absl::string_view contents) {
  return WriteAtomically(path, [&](const std::string& temporary) {
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return FileError("writing", path, errno);
    const bool written = WriteAll(fd, contents);
    const int error = errno;
    if (::close(fd) != 0 && written) return FileError("writing", path, errno);
    return written ? absl::OkStatus() : FileError("writing", path, error);
  });
}

}  // namespace ocs::worker::files
