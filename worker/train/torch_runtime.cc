#include "worker/train/torch_runtime.h"

#include <thread>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#ifdef OCS_CUDA
#include <cuda_runtime_api.h>
#endif

#include "absl/strings/str_cat.h"

namespace ocs::worker::train {

std::string DescribeTorchRuntime() {
  const bool cuda = torch::cuda::is_available();
  return absl::StrCat("LibTorch ", TORCH_VERSION, ", CUDA available: ", cuda ? "yes" : "no", " (",
                      cuda ? torch::cuda::device_count() : 0,
                      " devices), intra-op threads: ", at::get_num_threads());
}

void ConfigureIntraOpThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
}

std::optional<DeviceMemory> CudaMemory() {
#ifdef OCS_CUDA
  size_t free = 0, total = 0;
  if (torch::cuda::is_available() && cudaMemGetInfo(&free, &total) == cudaSuccess) {
    return DeviceMemory{static_cast<int64_t>(total - free), static_cast<int64_t>(total)};
  }
#endif
  return std::nullopt;
}

}  // namespace ocs::worker::train
