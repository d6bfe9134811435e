# Helpers that give every ocs target the same warnings and conventions.

# ocs_target_defaults(<target>): C++20 warnings for our own code.
function(ocs_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
endfunction()

# ocs_uses_torch(<target>): the target compiles against LibTorch. Such targets must not include
# protobuf or gRPC headers (LibTorch's include folder may carry an old google/protobuf).
function(ocs_uses_torch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  # LibTorch's headers are not warning-clean under -Wextra: include them as system headers.
  target_include_directories(${target} SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
  if(OCS_CUDA)
    target_compile_definitions(${target} PUBLIC OCS_CUDA=1 USE_C10D_NCCL)
    target_include_directories(${target} SYSTEM PRIVATE ${NCCL_INCLUDE_DIR})
    target_link_libraries(${target} PUBLIC ${NCCL_LIBRARY})
  endif()
  if(GLOO_INCLUDE_DIR)
    # OCS_WITH_GLOO, not USE_C10D_GLOO: LibTorch 2.x defines the latter whether or not it ships
    # Gloo's headers.
    target_compile_definitions(${target} PUBLIC USE_C10D_GLOO OCS_WITH_GLOO)
    target_include_directories(${target} SYSTEM PRIVATE ${GLOO_INCLUDE_DIR})
  endif()
endfunction()
