#include "worker/engine/export.h"

#include <map>
#include <sstream>

#include <torch/script.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "worker/engine/flops.h"
#include "worker/files/atomic_file.h"

namespace ocs::worker::engine {
namespace {

std::string AttributeName(const Layer& layer, absl::string_view tensor) {
  return absl::StrCat(absl::StrReplaceAll(layer.name, {{".", "_"}}), "_", tensor);
}

std::string Var(int layer) { return absl::StrCat("x", layer); }

std::string Pair(int value) { return absl::StrCat("[", value, ", ", value, "]"); }

// One line of TorchScript computing layer `i` from earlier variables.
std::string LayerStatement(const Network& network, int i) {
  const Layer& l = network.layer(i);
  const std::string x = l.inputs.empty() ? "x" : Var(l.inputs[0]);
  auto self = [&](absl::string_view tensor) { return "self." + AttributeName(l, tensor); };
  std::string rhs;
  switch (l.kind) {
    case LayerKind::kInput:
      rhs = "x";
      break;
    case LayerKind::kConv:
      rhs = absl::StrCat("torch.conv2d(", x, ", ", self("weight"), ", ",
                         l.bias ? self("bias") : "None", ", ", Pair(l.stride), ", ",
                         Pair(l.padding), ", [1, 1], ", l.groups, ")");
      break;
    case LayerKind::kBatchNorm:
      rhs = absl::StrCat("torch.batch_norm(", x, ", ", self("weight"), ", ", self("bias"), ", ",
                         self("running_mean"), ", ", self("running_var"), ", self.training, ",
                         NetworkModel::kBatchNormMomentum, ", ", NetworkModel::kBatchNormEps,
                         ", True)");
      break;
    case LayerKind::kRelu:
      rhs = absl::StrCat("torch.relu(", x, ")");
      break;
    case LayerKind::kRelu6:
      rhs = absl::StrCat("torch.hardtanh(", x, ", 0.0, 6.0)");
      break;
    case LayerKind::kMaxPool:
      rhs = absl::StrCat("torch.max_pool2d(", x, ", ", Pair(l.kernel), ", ", Pair(l.stride), ", ",
                         Pair(l.padding), ", [1, 1], False)");
      break;
    case LayerKind::kAvgPool:
      rhs = absl::StrCat("torch.avg_pool2d(", x, ", ", Pair(l.kernel), ", ", Pair(l.stride), ", ",
                         Pair(l.padding), ", False, True, None)");
      break;
    case LayerKind::kGlobalAvgPool:
      rhs = absl::StrCat("torch.adaptive_avg_pool2d(", x, ", [1, 1])");
      break;
    case LayerKind::kAdd: {
      std::vector<std::string> operands;
      for (int input : l.inputs) operands.push_back(Var(input));
      rhs = absl::StrJoin(operands, " + ");
      break;
    }
    case LayerKind::kConcat: {
      std::vector<std::string> operands;
      for (int input : l.inputs) operands.push_back(Var(input));
      rhs = absl::StrCat("torch.cat([", absl::StrJoin(operands, ", "), "], 1)");
      break;
    }
    case LayerKind::kFlatten:
      rhs = absl::StrCat("torch.flatten(", x, ", 1)");
      break;
    case LayerKind::kLinear:
      rhs = absl::StrCat("torch.linear(", x, ", ", self("weight"), ", ",
                         l.bias ? self("bias") : "None", ")");
      break;
  }
  return absl::StrCat("    ", Var(i), " = ", rhs, "\n");
}

nlohmann::json CostJson(const ModelCost& cost) {
  return {{"flops", cost.flops}, {"params", cost.params}};
}

}  // namespace

absl::Status ExportTorchScript(const NetworkModel& model, const std::string& path) {
  const Network& network = model.network();
  torch::jit::Module module("ocs.PrunedNetwork");
  // nn.Module's `training` flag, which torch.jit's train()/eval() and batch_norm read.
  module.register_attribute("training", c10::BoolType::get(), false);
  std::map<std::string, std::string> owner;  // attribute -> layer, to catch name collisions
  auto add = [&](const Layer& layer, const char* name, const at::Tensor& tensor, bool buffer) {
    if (!tensor.defined()) return absl::OkStatus();
    const std::string attribute = AttributeName(layer, name);
    if (!owner.emplace(attribute, layer.name).second) {
      return absl::InternalError(absl::StrCat("export: layers ", owner[attribute], " and ",
                                              layer.name, " both map to ", attribute));
    }
    at::Tensor value = tensor.detach().to(at::kCPU).clone();
    if (buffer) {
      module.register_buffer(attribute, value);
    } else {
      module.register_parameter(attribute, value.set_requires_grad(true), /*is_buffer=*/false);
    }
    return absl::OkStatus();
  };
  std::string source = "def forward(self, x):\n";
  for (int i = 0; i < network.size(); ++i) {
    const Layer& layer = network.layer(i);
    const LayerTensors& t = model.tensors(i);
    for (absl::Status status :
         {add(layer, "weight", t.weight, false), add(layer, "bias", t.bias, false),
          add(layer, "running_mean", t.running_mean, true),
          add(layer, "running_var", t.running_var, true)}) {
      if (!status.ok()) return status;
    }
    source += LayerStatement(network, i);
  }
  source += absl::StrCat("    return ", Var(network.output()), "\n");
  try {
    module.define(source);
    module.eval();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("export to ", path, " failed: ", e.what_without_backtrace()));
  }
  return files::WriteAtomically(path, [&](const std::string& temporary) {
    try {
      module.save(temporary);
      return absl::OkStatus();
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("export to ", path, " failed: ", e.what_without_backtrace()));
    }
  });
}

std::string PruneReportJson(const Network& dense, const Network& pruned,
                            const ChannelGroups& groups, const common::Mask& mask) {
  const ModelCost before = NetworkCost(dense), after = NetworkCost(pruned);
  nlohmann::json report;
  report["before"] = CostJson(before);
  report["after"] = CostJson(after);
  report["flopsReduction"] = 1.0 - static_cast<double>(after.flops) / before.flops;
  report["paramsReduction"] = 1.0 - static_cast<double>(after.params) / before.params;
  nlohmann::json layers = nlohmann::json::array();
  for (int i = 0; i < dense.size(); ++i) {
    const Layer& layer = dense.layer(i);
    if (!layer.has_weights()) continue;
    layers.push_back({{"name", layer.name},
                      {"kind", ToString(layer.kind)},
                      {"inBefore", layer.input_shape.channels},
                      {"inAfter", pruned.layer(i).input_shape.channels},
                      {"outBefore", layer.output_shape.channels},
                      {"outAfter", pruned.layer(i).output_shape.channels}});
  }
  report["layers"] = layers;
  nlohmann::json mask_json = nlohmann::json::array();
  for (int g = 0; g < groups.size(); ++g) {
    mask_json.push_back({{"group", g},
                         {"name", groups.group(g).name},
                         {"size", mask.groups[g].size},
                         {"kept", mask.groups[g].kept}});
  }
  report["mask"] = mask_json;
  return report.dump(2);
}

}  // namespace ocs::worker::engine
