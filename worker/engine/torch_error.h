// What went wrong inside LibTorch, as a user should read it. Torch stays out of this header.
#pragma once

#include <exception>
#include <string>

namespace ocs::worker::engine {

// LibTorch throws c10::Error, whose what() carries a C++ backtrace users need not see, and, from
// the TorchScript interpreter, std::runtime_error whose last line says what went wrong under a
// script traceback. Anything else (a Gloo error) is told by the last line of its what().
std::string DescribeTorchError(const std::exception& e);

// Whether LibTorch could not allocate memory. CUDA's allocator throws c10::OutOfMemoryError; the
// CPU allocator a plain c10::Error that says it "can't allocate memory"; cuBLAS and cuDNN report
// *_STATUS_ALLOC_FAILED; plain C++ allocations throw std::bad_alloc.
bool IsOutOfMemory(const std::exception& e);

}  // namespace ocs::worker::engine
