// Writing a file whole or not at all. A reader of the destination (a user, an upload, a resume)
// sees the previous file or the new one, never half of either: the bytes go to a temporary file
// beside it, are flushed to the disk (fsync), and the temporary is renamed over the destination.
// Every failure — a full disk included, which often shows only at the flush — is a status naming
// the file, and leaves the destination as it was.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ocs::worker::files {

// Fills the file at `temporary_path` (e.g. a library's save-to-path call); errors as statuses.
using FileWriter = std::function<absl::Status(const std::string& temporary_path)>;

// The temporary file WriteAtomically uses for `path`. A crash can leave it behind; it is never
// read, and the next write of `path` replaces it.
std::string TemporaryPath(const std::string& path);

// Creates `path`'s folder, lets `write` fill TemporaryPath(path), flushes it to the disk and
// renames it over `path`, then syncs the folder so that the rename survives a crash too.
absl::Status WriteAtomically(const std::string& path, const FileWriter& write);

// The same for bytes in memory.
absl::Status WriteAtomically(const std::string& path, absl::string_view contents);

}  // namespace ocs::worker::files
