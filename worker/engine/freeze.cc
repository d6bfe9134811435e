#include "worker/engine/freeze.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/engine/torch_error.h"
#include "worker/files/atomic_file.h"

namespace ocs::worker::engine {
namespace {

namespace fs = std::filesystem;

int CountNodes(torch::jit::Block* block, c10::Symbol kind) {
  int count = 0;
  for (torch::jit::Node* node : block->nodes()) {
    count += node->kind() == kind;
    for (torch::jit::Block* inner : node->blocks()) count += CountNodes(inner, kind);
  }
  return count;
}

// aten::batch_norm calls in `module`'s forward, submodule calls inlined.
int CountBatchNorms(torch::jit::Module& module) {
  std::shared_ptr<torch::jit::Graph> graph = module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  return CountNodes(graph->block(), c10::Symbol::fromQualString("aten::batch_norm"));
}

absl::StatusOr<torch::jit::Module> Load(const std::string& path, const c10::Device& device) {
  if (!fs::is_regular_file(path)) {
    return absl::NotFoundError(absl::StrCat("model \"", path, "\": no such file"));
  }
  try {
    torch::jit::Module module = torch::jit::load(path, device);
    if (!module.find_method("forward")) {
      return absl::InvalidArgumentError(
          absl::StrCat("model \"", path, "\": the TorchScript module has no forward method"));
    }
    module.eval();
    return module;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", path, "\" is not a TorchScript file: ", DescribeTorchError(e)));
  }
}

absl::StatusOr<at::Tensor> Forward(torch::jit::Module& module, const at::Tensor& input) {
  torch::NoGradGuard no_grad;
  try {
    const c10::IValue output = module.forward({input});
    if (!output.isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat("forward returned a ", output.tagKind(), ", not a tensor"));
    }
    return output.toTensor();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model refused a batch of shape [", absl::StrJoin(input.sizes(), ", "),
                     "] (not its input shape?): ", DescribeTorchError(e)));
  }
}

// Writes `module` to `out` whole or not at all, creating `out`'s folder.
absl::Status Save(torch::jit::Module& module, const std::string& out) {
  return files::WriteAtomically(out, [&](const std::string& temporary) {
    try {
      module.save(temporary);
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::PermissionDeniedError(
          absl::StrCat("writing \"", out, "\": ", DescribeTorchError(e)));
    }
  });
}

// Checked before LibTorch sees the shape: it throws on a negative size.
absl::Status CheckInputShape(const std::vector<int64_t>& shape) {
  if (shape.size() != 3) {
    return absl::InvalidArgumentError("the input shape is C,H,W: three numbers");
  }
  for (int64_t size : shape) {
    if (size < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("the input shape [", absl::StrJoin(shape, ", "), "] has a size below 1"));
    }
  }
  return absl::OkStatus();
}

struct CheckOutputs {
  double max_abs_difference = 0, max_abs_output = 0;
};

// Runs both models on a seeded batch of two. The batch itself can fail to allocate (a huge
// shape): LibTorch reports that as an exception, returned here as a status.
absl::StatusOr<CheckOutputs> Compare(torch::jit::Module& original, torch::jit::Module& frozen,
                                     const std::vector<int64_t>& input_shape,
                                     const c10::Device& device) {
  std::vector<int64_t> batch_shape = {2};
  batch_shape.insert(batch_shape.end(), input_shape.begin(), input_shape.end());
  at::Tensor batch;
  try {
    batch = at::randn(batch_shape, at::detail::createCPUGenerator(/*seed_in=*/1)).to(device);
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("a check batch of shape [",
                                                     absl::StrJoin(batch_shape, ", "),
                                                     "] cannot be made: ", DescribeTorchError(e)));
  }
  absl::StatusOr<at::Tensor> expected = Forward(original, batch);
  if (!expected.ok()) return expected.status();
  absl::StatusOr<at::Tensor> actual = Forward(frozen, batch);
  if (!actual.ok()) return actual.status();
  try {
    return CheckOutputs{(*actual - *expected).abs().max().item<double>(),
                        expected->abs().max().item<double>()};
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "comparing the frozen model's outputs with the original's: ", DescribeTorchError(e)));
  }
}

}  // namespace

absl::StatusOr<FrozenModel> FreezeForServing(const std::string& in, const std::string& out,
                                             const FreezeOptions& options) {
  if (absl::Status shape = CheckInputShape(options.input_shape); !shape.ok()) return shape;
  std::error_code error;
  if (fs::exists(out, error) && fs::equivalent(in, out, error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", out, "\" is the model being frozen: write the frozen copy elsewhere (-o)"));
  }
  if (options.cuda && !torch::cuda::is_available()) {
    return absl::FailedPreconditionError("freezing on cuda, but no CUDA device is visible");
  }
  const c10::Device device(options.cuda ? c10::kCUDA : c10::kCPU);
  absl::StatusOr<torch::jit::Module> original = Load(in, device);
  if (!original.ok()) return original.status();

  FrozenModel result;
  torch::jit::Module frozen;
  try {
    result.batch_norms_before = CountBatchNorms(*original);
    frozen = torch::jit::freeze(*original);
    result.batch_norms_after = CountBatchNorms(frozen);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("freezing \"", in, "\": ", DescribeTorchError(e)));
  }

  absl::StatusOr<CheckOutputs> check = Compare(*original, frozen, options.input_shape, device);
  if (!check.ok()) return check.status();
  result.max_abs_output = check->max_abs_output;
  result.max_abs_difference = check->max_abs_difference;
  if (!(result.max_abs_difference <= options.tolerance * std::max(1.0, result.max_abs_output))) {
    return absl::InternalError(
        absl::StrCat("the frozen model's outputs differ from the original's by up to ",
                     result.max_abs_difference, " (largest output ", result.max_abs_output,
                     ", tolerance ", options.tolerance, " of it); nothing was written"));
  }
  if (absl::Status saved = Save(frozen, out); !saved.ok()) return saved;
  return result;
}

}  // namespace ocs::worker::engine
