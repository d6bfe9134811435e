// What LibTorch this worker runs on, and its thread settings. Torch stays out of this header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ocs::worker::train {

// "LibTorch 1.13.1, CUDA available: no (0 devices), intra-op threads: 2"
std::string DescribeTorchRuntime();

// LibTorch defaults to one intra-op thread here; training wants every core (DESIGN.md: ≈1.9× on
// 2 cores). `threads` <= 0 means all hardware threads.
void ConfigureIntraOpThreads(int threads);

struct DeviceMemory {
  int64_t used_bytes = 0, total_bytes = 0;
};
// The current GPU's memory in use (by every process) and in all; nullopt without CUDA.
std::optional<DeviceMemory> CudaMemory();

}  // namespace ocs::worker::train
