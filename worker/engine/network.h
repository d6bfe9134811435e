// The network representation every part of the pruning engine works from: one source of truth
// for building the LibTorch model, counting FLOPs and parameters, deriving the coupled channel
// groups, and performing the surgery. It is a DAG of layers in topological order, with the
// shapes inferred at build time. No Torch here: what can be computed from structure alone (groups,
// FLOPs, the sub-network search) stays cheap to compile and to run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ocs::worker::engine {

enum class LayerKind {
  kInput,
  kConv,       // 2-D convolution; groups == in == out is depthwise
  kBatchNorm,  // 2-D batch norm (affine, running statistics)
  kRelu,
  kRelu6,
  kMaxPool,
  kAvgPool,
  kGlobalAvgPool,  // adaptive average pooling to 1x1
  kAdd,            // residual addition: all operands have the same shape
  kConcat,         // along channels
  kFlatten,        // C x H x W -> C*H*W features, channel-major (PyTorch's order)
  kLinear,
};

const char* ToString(LayerKind kind);

// The shape of one sample's activation. Features after Flatten/Linear are channels x 1 x 1.
struct Shape {
  int channels = 0;
  int height = 1;
  int width = 1;
  int spatial() const { return height * width; }
  bool operator==(const Shape&) const = default;
};

struct Layer {
  LayerKind kind = LayerKind::kInput;
  std::string name;         // PyTorch-style path, e.g. "stage_2.3.conv_b"
  std::vector<int> inputs;  // indices of earlier layers
  Shape input_shape;        // of inputs[0] (all operands of Add share it)
  Shape output_shape;
  // Conv and pooling geometry (square kernels).
  int kernel = 1;
  int stride = 1;
  int padding = 0;
  int groups = 1;  // conv only
  bool bias = false;

  bool has_weights() const {
    return kind == LayerKind::kConv || kind == LayerKind::kBatchNorm || kind == LayerKind::kLinear;
  }
  bool is_depthwise() const {
    return kind == LayerKind::kConv && groups > 1 && groups == input_shape.channels &&
           groups == output_shape.channels;
  }
};

class Network {
 public:
  const std::vector<Layer>& layers() const { return layers_; }
  const Layer& layer(int index) const { return layers_[index]; }
  int size() const { return static_cast<int>(layers_.size()); }
  int output() const { return size() - 1; }  // the last layer is the network's output
  Shape input_shape() const { return layers_[0].output_shape; }
  std::optional<int> FindLayer(absl::string_view name) const;
  // The layers that read layer `index`'s output.
  std::vector<int> Consumers(int index) const;

 private:
  friend class NetworkBuilder;
  friend class ChannelGroups;  // Resize() rewrites the channel counts
  std::vector<Layer> layers_;
};

// Builds a Network layer by layer, inferring shapes. Each call returns the new layer's index. The
// first problem (a shape that does not fit, a spatial size that shrinks to nothing) is kept and
// returned by Build(), naming the layer, so a model that cannot take the job's input shape fails
// with a clear message instead of a crash.
class NetworkBuilder {
 public:
  explicit NetworkBuilder(Shape input);

  int input() const { return 0; }
  int Conv(std::string name, int input, int out_channels, int kernel, int stride, int padding,
           int groups = 1, bool bias = false);
  int BatchNorm(std::string name, int input);
  int Relu(std::string name, int input);
  int Relu6(std::string name, int input);
  int MaxPool(std::string name, int input, int kernel, int stride, int padding = 0);
  int AvgPool(std::string name, int input, int kernel, int stride, int padding = 0);
  int GlobalAvgPool(std::string name, int input);
  int Add(std::string name, std::vector<int> inputs);
  int Concat(std::string name, std::vector<int> inputs);
  int Flatten(std::string name, int input);
  int Linear(std::string name, int input, int out_features, bool bias = true);

  // Conv + BatchNorm (+ ReLU), the common block; returns the last layer.
  int ConvBn(const std::string& conv_name, const std::string& bn_name, int input, int out_channels,
             int kernel, int stride, int padding, int groups = 1);

  const Shape& shape(int layer) const { return network_.layers_[layer].output_shape; }
  absl::StatusOr<Network> Build() &&;

 private:
  int Append(Layer layer);
  Shape Pooled(const std::string& name, const Shape& in, int kernel, int stride, int padding);
  void Fail(const std::string& name, const std::string& problem);

  Network network_;
  std::string error_;
};

}  // namespace ocs::worker::engine
