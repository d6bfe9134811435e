// Where LibTorch keeps an optimizer's per-parameter state: keyed by the parameter's TensorImpl,
// as its printed address before LibTorch 2.x and as the pointer since. Every lookup goes through
// OptimizerStateKey so the code builds against both (Debian's 1.13 and the GPU hosts' 2.x).
#pragma once

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include <torch/optim/optimizer.h>

namespace ocs::worker::engine {

using OptimizerStateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;

template <typename Key = typename OptimizerStateMap::key_type>
Key OptimizerStateKey(const at::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream address;  // the format LibTorch 1.x prints the pointer in
    address << static_cast<const void*>(parameter.unsafeGetTensorImpl());
    return address.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

}  // namespace ocs::worker::engine
