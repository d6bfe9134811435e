# All third-party packages, found in one place and in an order that matters:
# Protobuf and gRPC MUST be found before Torch. Torch's CMake config defines an empty
# protobuf::libprotobuf target when none exists yet, and the link then fails with undefined
# protobuf symbols (see DESIGN.md, "Engineering rules").

find_package(Threads REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)

find_package(Torch REQUIRED)
if(OCS_CUDA)
  if(NOT TORCH_CUDA_LIBRARIES AND NOT TARGET torch_cuda)
    message(FATAL_ERROR "OCS_CUDA=ON but the LibTorch found at ${Torch_DIR} has no CUDA. "
                        "Point CMAKE_PREFIX_PATH at a CUDA LibTorch (see shared/cuda-host).")
  endif()
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} ENV NCCL_ROOT PATH_SUFFIXES include REQUIRED)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${NCCL_ROOT} ENV NCCL_ROOT
               PATH_SUFFIXES lib lib64 REQUIRED)
  message(STATUS "ocs: CUDA build, NCCL ${NCCL_LIBRARY}")
else()
  message(STATUS "ocs: CPU build (LibTorch ${Torch_VERSION})")
endif()
# Gloo (c10d on CPU): Debian's libtorch-dev 1.13 is built with it and its c10d headers include
# gloo's; PyTorch's wheels ship without Gloo's headers, and such a build serves GPU ranks only.
find_path(GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS})
if(NOT GLOO_INCLUDE_DIR AND NOT OCS_CUDA)
  message(FATAL_ERROR "no gloo/algorithm.h: the CPU build needs Gloo's headers (Debian: libgloo-dev)")
endif()

