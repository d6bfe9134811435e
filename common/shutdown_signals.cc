#include "common/shutdown_signals.h"

#include <pthread.h>
#include <string.h>

namespace ocs::common {

sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

namespace {

std::string NameOf(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return strsignal(signal);
}

}  // namespace

std::string WaitForShutdownSignal(const sigset_t& signals) {
  int signal = 0;
  sigwait(&signals, &signal);
  return NameOf(signal);
}

std::optional<std::string> WaitForShutdownSignal(const sigset_t& signals,
                                                 std::chrono::milliseconds timeout) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const timespec wait{static_cast<time_t>(seconds.count()),
                      static_cast<long>((timeout - seconds).count() * 1'000'000)};
  const int signal = sigtimedwait(&signals, nullptr, &wait);
  if (signal < 0) return std::nullopt;  // timed out, or interrupted by another signal
  return NameOf(signal);
}

}  // namespace ocs::common
