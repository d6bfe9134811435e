// Tests that form CPU process groups (Gloo) skip themselves in builds without Gloo: the CUDA
// build against PyTorch's wheels, whose multi-rank logic these same tests cover on CPU builds.
#pragma once

#include <gtest/gtest.h>

#define OCS_SKIP_WITHOUT_GLOO()                                                           \
  do {                                                                                    \
    if (!OCS_HAS_GLOO) GTEST_SKIP() << "built without Gloo: CPU ranks cannot rendezvous"; \
  } while (0)
