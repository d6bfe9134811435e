#include "server/ids.h"

#include "absl/random/random.h"

namespace ocs::server {

std::string RandomIdSuffix(int length) {
  static constexpr char kAlphabet[] = "bcdfghjkmnpqrstvwxz23456789";
  thread_local absl::BitGen random;
  std::string suffix;
  for (int i = 0; i < length; ++i) {
    suffix.push_back(kAlphabet[absl::Uniform<size_t>(random, 0, sizeof(kAlphabet) - 1)]);
  }
  return suffix;
}

}  // namespace ocs::server
