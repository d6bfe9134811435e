#include "tests/support/memory_limit.h"

#include "absl/strings/str_cat.h"

namespace ocs::testing {

std::vector<std::string> WithMemoryLimit(int64_t bytes, const std::vector<std::string>& argv) {
  std::vector<std::string> limited{"/usr/bin/prlimit", absl::StrCat("--data=", bytes), "--"};
  limited.insert(limited.end(), argv.begin(), argv.end());
  return limited;
}

std::string OutOfMemoryJobYaml(int max_restarts) {
  return absl::StrCat(
      "apiVersion: ocs/v1\nkind: PruningJob\nmetadata: {name: out-of-memory}\nspec:\n"
      "  model: {arch: resnet20, numClasses: 4, inputShape: [3, 256, 256]}\n"
      "  data: {dataset: synthetic, trainLimit: 64, testLimit: 16}\n"
      "  training: {epochs: 4, batchSize: 64}\n"
      "  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: 2}\n"
      "  resources: {workers: 1, device: cpu}\n"
      "  maxRestarts: ",
      max_restarts, "\n");
}

}  // namespace ocs::testing
