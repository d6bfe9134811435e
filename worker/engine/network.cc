#include "worker/engine/network.h"

#include "absl/strings/str_cat.h"

namespace ocs::worker::engine {

const char* ToString(LayerKind kind) {
  switch (kind) {
    case LayerKind::kInput:
      return "input";
    case LayerKind::kConv:
      return "conv";
    case LayerKind::kBatchNorm:
      return "batchnorm";
    case LayerKind::kRelu:
      return "relu";
    case LayerKind::kRelu6:
      return "relu6";
    case LayerKind::kMaxPool:
      return "maxpool";
    case LayerKind::kAvgPool:
      return "avgpool";
    case LayerKind::kGlobalAvgPool:
      return "global_avgpool";
    case LayerKind::kAdd:
      return "add";
    case LayerKind::kConcat:
      return "concat";
    case LayerKind::kFlatten:
      return "flatten";
    case LayerKind::kLinear:
      return "linear";
  }
  return "unknown";
}

std::optional<int> Network::FindLayer(absl::string_view name) const {
  for (int i = 0; i < size(); ++i) {
    if (layers_[i].name == name) return i;
  }
  return std::nullopt;
}

std::vector<int> Network::Consumers(int index) const {
  std::vector<int> consumers;
  for (int i = index + 1; i < size(); ++i) {
    for (int input : layers_[i].inputs) {
      if (input == index) {
        consumers.push_back(i);
        break;
      }
    }
  }
  return consumers;
}

namespace {

Layer MakeLayer(LayerKind kind, std::string name, std::vector<int> inputs) {
  Layer layer;
  layer.kind = kind;
  layer.name = std::move(name);
  layer.inputs = std::move(inputs);
  return layer;
}

}  // namespace

NetworkBuilder::NetworkBuilder(Shape input) {
  Layer layer;
  layer.kind = LayerKind::kInput;
  layer.name = "input";
  layer.input_shape = layer.output_shape = input;
  network_.layers_.push_back(layer);
  if (input.channels < 1 || input.height < 1 || input.width < 1) Fail("input", "empty input shape");
}

void NetworkBuilder::Fail(const std::string& name, const std::string& problem) {
  if (error_.empty()) error_ = absl::StrCat("layer ", name, ": ", problem);
}

int NetworkBuilder::Append(Layer layer) {
  if (!layer.inputs.empty()) layer.input_shape = shape(layer.inputs[0]);
  network_.layers_.push_back(std::move(layer));
  return network_.size() - 1;
}

Shape NetworkBuilder::Pooled(const std::string& name, const Shape& in, int kernel, int stride,
                             int padding) {
  Shape out = in;
  out.height = (in.height + 2 * padding - kernel) / stride + 1;
  out.width = (in.width + 2 * padding - kernel) / stride + 1;
  if (in.height + 2 * padding < kernel || in.width + 2 * padding < kernel || out.height < 1 ||
      out.width < 1) {
    Fail(name, absl::StrCat("a ", in.height, "x", in.width, " input is too small for kernel ",
                            kernel, ", stride ", stride,
                            " (the input shape is too small for "
                            "this architecture)"));
    out.height = out.width = 1;
  }
  return out;
}

int NetworkBuilder::Conv(std::string name, int input, int out_channels, int kernel, int stride,
                         int padding, int groups, bool bias) {
  const Shape in = shape(input);
  if (in.channels % groups != 0 || out_channels % groups != 0) {
    Fail(name, absl::StrCat("groups ", groups, " must divide ", in.channels, " input and ",
                            out_channels, " output channels"));
  }
  Layer layer = MakeLayer(LayerKind::kConv, std::move(name), {input});
  layer.kernel = kernel, layer.stride = stride, layer.padding = padding, layer.groups = groups;
  layer.bias = bias;
  layer.output_shape = Pooled(layer.name, in, kernel, stride, padding);
  layer.output_shape.channels = out_channels;
  return Append(std::move(layer));
}

int NetworkBuilder::BatchNorm(std::string name, int input) {
  Layer layer = MakeLayer(LayerKind::kBatchNorm, std::move(name), {input});
  layer.output_shape = shape(input);
  return Append(std::move(layer));
}

int NetworkBuilder::Relu(std::string name, int input) {
  Layer layer = MakeLayer(LayerKind::kRelu, std::move(name), {input});
  layer.output_shape = shape(input);
  return Append(std::move(layer));
}

int NetworkBuilder::Relu6(std::string name, int input) {
  Layer layer = MakeLayer(LayerKind::kRelu6, std::move(name), {input});
  layer.output_shape = shape(input);
  return Append(std::move(layer));
}

int NetworkBuilder::MaxPool(std::string name, int input, int kernel, int stride, int padding) {
  Layer layer = MakeLayer(LayerKind::kMaxPool, std::move(name), {input});
  layer.kernel = kernel, layer.stride = stride, layer.padding = padding;
  layer.output_shape = Pooled(layer.name, shape(input), kernel, stride, padding);
  return Append(std::move(layer));
}

int NetworkBuilder::AvgPool(std::string name, int input, int kernel, int stride, int padding) {
  Layer layer = MakeLayer(LayerKind::kAvgPool, std::move(name), {input});
  layer.kernel = kernel, layer.stride = stride, layer.padding = padding;
  layer.output_shape = Pooled(layer.name, shape(input), kernel, stride, padding);
  return Append(std::move(layer));
}

int NetworkBuilder::GlobalAvgPool(std::string name, int input) {
  Layer layer = MakeLayer(LayerKind::kGlobalAvgPool, std::move(name), {input});
  layer.output_shape = Shape{shape(input).channels, 1, 1};
  return Append(std::move(layer));
}

int NetworkBuilder::Add(std::string name, std::vector<int> inputs) {
  for (int input : inputs) {
    if (!(shape(input) == shape(inputs[0]))) {
      Fail(name, "residual operands have different shapes");
    }
  }
  Layer layer = MakeLayer(LayerKind::kAdd, std::move(name), std::move(inputs));
  layer.output_shape = shape(layer.inputs[0]);
  return Append(std::move(layer));
}

int NetworkBuilder::Concat(std::string name, std::vector<int> inputs) {
  Shape out = shape(inputs[0]);
  out.channels = 0;
  for (int input : inputs) {
    const Shape in = shape(input);
    if (in.height != out.height || in.width != out.width) {
      Fail(name, "concatenated operands have different spatial sizes");
    }
    out.channels += in.channels;
  }
  Layer layer = MakeLayer(LayerKind::kConcat, std::move(name), std::move(inputs));
  layer.output_shape = out;
  return Append(std::move(layer));
}

int NetworkBuilder::Flatten(std::string name, int input) {
  Layer layer = MakeLayer(LayerKind::kFlatten, std::move(name), {input});
  const Shape in = shape(input);
  layer.output_shape = Shape{in.channels * in.spatial(), 1, 1};
  return Append(std::move(layer));
}

int NetworkBuilder::Linear(std::string name, int input, int out_features, bool bias) {
  const Shape in = shape(input);
  if (in.spatial() != 1) Fail(name, "a linear layer needs flattened input");
  Layer layer = MakeLayer(LayerKind::kLinear, std::move(name), {input});
  layer.bias = bias;
  layer.output_shape = Shape{out_features, 1, 1};
  return Append(std::move(layer));
}

int NetworkBuilder::ConvBn(const std::string& conv_name, const std::string& bn_name, int input,
                           int out_channels, int kernel, int stride, int padding, int groups) {
  return BatchNorm(bn_name, Conv(conv_name, input, out_channels, kernel, stride, padding, groups));
}

absl::StatusOr<Network> NetworkBuilder::Build() && {
  if (!error_.empty()) return absl::InvalidArgumentError(error_);
  return std::move(network_);
}

}  // namespace ocs::worker::engine
