// Command-line parsing shared by the three mains, so that all answer --help/--version the same
// way and exit with 2 on a usage error (ocsctl documents the codes; the daemons follow them).
#pragma once

#include <optional>

#include <CLI/CLI.hpp>

namespace ocs::common {

inline constexpr int kExitUsage = 2;

// Parses argv into `app`. Returns the exit code when the process should stop now: 0 after
// --help/--version, kExitUsage after a usage error (CLI11 has printed the message).
inline std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  return std::nullopt;
}

}  // namespace ocs::common
