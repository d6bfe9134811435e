// Workers short of memory, for the out-of-memory tests: a limit a small job runs under, and a job
// too large for it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ocs::testing {

// 1.5 GiB: a small job (SmallJobYaml) runs under it.
inline constexpr int64_t kWorkerMemoryLimitBytes = int64_t{3} << 29;

// `argv` run with its private writable memory limited to `bytes` (util-linux's prlimit --data): an
// allocation past it fails as one does on a device out of memory, where the machine would start
// swapping. Unlike the address space (--as), it leaves out code and reserved ranges, which vary
// with the build (CUDA's libraries) and the machine.
std::vector<std::string> WithMemoryLimit(int64_t bytes, const std::vector<std::string>& argv);

// One CPU rank of a job whose activations need over 3 GiB (batch 64 of 3×256×256): well past
// kWorkerMemoryLimitBytes.
std::string OutOfMemoryJobYaml(int max_restarts);

}  // namespace ocs::testing
