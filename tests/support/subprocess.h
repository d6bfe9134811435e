// Real processes for integration tests: run a command to completion, or keep a server running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ocs::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;
  std::string err;
};

// Runs argv[0] with arguments, capturing stdout and stderr; kills it after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::seconds timeout = std::chrono::seconds(60));

// A background process (e.g. ocs-coordinator) whose output goes to a log file. The destructor
// kills it, so a failing test leaves nothing behind.
class Subprocess {
 public:
  // `environment`: KEY=VALUE entries set on top of this process's environment.
  Subprocess(const std::vector<std::string>& argv, const std::string& log_path,
             const std::vector<std::string>& environment = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int signal);
  // Waits for the exit; returns the exit code, or -1 (killed by signal or timeout).
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(30));

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

// For --metrics-listen: tests run many servers side by side, each lets the system pick a port.
inline constexpr char kAnyPort[] = "127.0.0.1:0";

// The content of a file ("" when missing).
std::string ReadFile(const std::string& path);

}  // namespace ocs::testing
