// How LibTorch's errors are told and sorted: real errors from LibTorch where this machine can make
// them, CUDA's typed out-of-memory error thrown as its allocator throws it.
#include "worker/engine/torch_error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace ocs::worker::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Runs `f`, which must throw, and returns what it threw.
template <typename F>
std::exception_ptr Thrown(F f) {
  try {
    f();
  } catch (...) {
    return std::current_exception();
  }
  ADD_FAILURE() << "nothing was thrown";
  return nullptr;
}

template <typename Check>
auto OnThrown(std::exception_ptr thrown, Check check) {
  try {
    std::rethrow_exception(thrown);
  } catch (const std::exception& e) {
    return check(e);
  }
}

TEST(TorchErrorTest, ATensorTooLargeForTheCpuIsOutOfMemory) {
  // A petabyte: more than any machine's memory and swap, refused at once.
  const auto thrown = Thrown([] { at::empty({int64_t{1} << 48}, at::kFloat); });
  EXPECT_TRUE(OnThrown(thrown, IsOutOfMemory));
  const std::string told = OnThrown(thrown, DescribeTorchError);
  EXPECT_THAT(told, HasSubstr("allocate"));
  EXPECT_THAT(told, Not(HasSubstr("Exception raised from")));  // no C++ backtrace
}

TEST(TorchErrorTest, CudasTypedOutOfMemoryErrorIsOutOfMemory) {
  // Words the message check would not catch: the type alone must tell.
  const auto thrown = Thrown([] {
    C10_THROW_ERROR(OutOfMemoryError, "Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total)");
  });
  EXPECT_TRUE(OnThrown(thrown, IsOutOfMemory));
}

TEST(TorchErrorTest, CublasAllocationFailuresAndBadAllocAreOutOfMemory) {
  const auto cublas = Thrown([] {
    TORCH_CHECK(false, "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate");
  });
  EXPECT_TRUE(OnThrown(cublas, IsOutOfMemory));
  EXPECT_TRUE(IsOutOfMemory(std::bad_alloc()));
}

TEST(TorchErrorTest, AShapeErrorIsNotOutOfMemory) {
  const auto thrown = Thrown([] { at::matmul(at::ones({2, 3}), at::ones({2, 3})); });
  EXPECT_FALSE(OnThrown(thrown, IsOutOfMemory));
  EXPECT_THAT(OnThrown(thrown, DescribeTorchError), HasSubstr("cannot be multiplied"));
}

// Gloo's IoException is a std::runtime_error whose what() starts with where it was thrown.
TEST(TorchErrorTest, APeersLostConnectionIsToldByItsLastLineAndIsNotOutOfMemory) {
  const std::runtime_error gloo(
      "[../third_party/gloo/gloo/transport/tcp/pair.cc:598]\nConnection closed by peer "
      "[127.0.0.1]:4711");
  EXPECT_FALSE(IsOutOfMemory(gloo));
  EXPECT_EQ(DescribeTorchError(gloo), "Connection closed by peer [127.0.0.1]:4711");
}

}  // namespace
}  // namespace ocs::worker::engine
