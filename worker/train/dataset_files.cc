#include "worker/train/dataset_files.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ocs::worker::train {
namespace {

absl::StatusOr<std::string> ReadGzip(const std::string& path, size_t max_bytes) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string bytes;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) {
    bytes.append(buffer, n);
    if (bytes.size() > max_bytes) {
      gzclose(file);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": more than ", max_bytes, " bytes when decompressed"));
    }
  }
  int error = Z_OK;
  const std::string message = n < 0 ? gzerror(file, &error) : "";
  gzclose(file);
  if (n < 0) {
    return absl::DataLossError(absl::StrCat(path, ": corrupt gzip data (", message, ")"));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (absl::EndsWith(path, ".gz")) return ReadGzip(path, max_bytes);
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat(path, ": ", ec.message()));
  if (size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", size, " bytes, more than ", max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(size, '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) {
    return absl::DataLossError(absl::StrCat(path, ": read failed"));
  }
  return bytes;
}

absl::StatusOr<std::string> FindPlainOrGzip(const std::string& base) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(base, ec)) return base;
  const std::string gz = base + ".gz";
  if (std::filesystem::is_regular_file(gz, ec)) return gz;
  return absl::NotFoundError(absl::StrCat("neither ", base, " nor ", gz, " exists"));
}

}  // namespace ocs::worker::train
