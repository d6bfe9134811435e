// SIGINT and SIGTERM, for the processes that stop cleanly on them (the coordinator, a serving
// worker). They are blocked in every thread from the start: threads inherit the mask, gRPC's and
// the metrics server's too. One thread then takes them with WaitForShutdownSignal.
#pragma once

#include <signal.h>

#include <chrono>
#include <optional>
#include <string>

namespace ocs::common {

// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts after; call
// it before any thread starts.
sigset_t BlockShutdownSignals();

// Waits for one of `signals`; returns its name ("SIGTERM").
std::string WaitForShutdownSignal(const sigset_t& signals);
// The same for at most `timeout`: nullopt when none came.
std::optional<std::string> WaitForShutdownSignal(const sigset_t& signals,
                                                 std::chrono::milliseconds timeout);

}  // namespace ocs::common
