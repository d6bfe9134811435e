#include "worker/engine/model_zoo.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/job_spec.h"
#include "common/suggest.h"

namespace ocs::worker::engine {
namespace {

constexpr int kMaxPool = -1;  // marks a pooling step in a VGG configuration

// VGG with BatchNorm in the CIFAR form: 3x3 conv + BN + ReLU stacks, 2x2 max-pooling between
// stages, global average pooling, one linear classifier from 512 features. Indices in
// `features.N` count every module, as torchvision's nn.Sequential does.
void BuildVgg(NetworkBuilder& b, const std::vector<int>& config, int num_classes) {
  int x = b.input(), index = 0;
  for (size_t i = 0; i < config.size(); ++i) {
    if (config[i] == kMaxPool) {
      x = b.MaxPool(absl::StrCat("features.", index++), x, 2, 2);
      continue;
    }
    x = b.Conv(absl::StrCat("features.", index++), x, config[i], 3, 1, 1, 1, /*bias=*/true);
    x = b.BatchNorm(absl::StrCat("features.", index++), x);
    x = b.Relu(absl::StrCat("features.", index++), x);
  }
  x = b.GlobalAvgPool("avgpool", x);
  x = b.Flatten("flatten", x);
  b.Linear("classifier", x, num_classes);
}

// CIFAR ResNet (He et al. 2016, 6n+2 layers): three stages of n basic blocks at 16/32/64
// channels; a 1x1-conv+BN projection shortcut where the shape changes.
void BuildCifarResNet(NetworkBuilder& b, int depth, int num_classes) {
  const int blocks = (depth - 2) / 6;
  int x = b.Relu("relu", b.ConvBn("conv1", "bn1", b.input(), 16, 3, 1, 1));
  int channels = 16;
  for (int stage = 1; stage <= 3; ++stage) {
    const int planes = 16 << (stage - 1);
    for (int block = 0; block < blocks; ++block) {
      const std::string p = absl::StrCat("stage_", stage, ".", block, ".");
      const int stride = (stage > 1 && block == 0) ? 2 : 1;
      int y = b.Relu(p + "relu_a", b.ConvBn(p + "conv_a", p + "bn_a", x, planes, 3, stride, 1));
      y = b.ConvBn(p + "conv_b", p + "bn_b", y, planes, 3, 1, 1);
      int shortcut = x;
      if (stride != 1 || channels != planes) {
        shortcut = b.ConvBn(p + "downsample.0", p + "downsample.1", x, planes, 1, stride, 0);
      }
      x = b.Relu(p + "relu", b.Add(p + "add", {y, shortcut}));
      channels = planes;
    }
  }
  x = b.Flatten("flatten", b.GlobalAvgPool("avgpool", x));
  b.Linear("classifier", x, num_classes);
}

// ImageNet ResNet (torchvision's names): basic blocks for 18/34, bottlenecks (stride on the 3x3,
// "v1.5") for 50.
void BuildImageNetResNet(NetworkBuilder& b, const std::vector<int>& blocks, bool bottleneck,
                         int num_classes) {
  int x = b.Relu("relu", b.ConvBn("conv1", "bn1", b.input(), 64, 7, 2, 3));
  x = b.MaxPool("maxpool", x, 3, 2, 1);
  const int expansion = bottleneck ? 4 : 1;
  int channels = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int planes = 64 << stage;
    for (int block = 0; block < blocks[stage]; ++block) {
      const std::string p = absl::StrCat("layer", stage + 1, ".", block, ".");
      const int stride = (stage > 0 && block == 0) ? 2 : 1;
      int y;
      if (bottleneck) {
        y = b.Relu(p + "relu1", b.ConvBn(p + "conv1", p + "bn1", x, planes, 1, 1, 0));
        y = b.Relu(p + "relu2", b.ConvBn(p + "conv2", p + "bn2", y, planes, 3, stride, 1));
        y = b.ConvBn(p + "conv3", p + "bn3", y, planes * expansion, 1, 1, 0);
      } else {
        y = b.Relu(p + "relu1", b.ConvBn(p + "conv1", p + "bn1", x, planes, 3, stride, 1));
        y = b.ConvBn(p + "conv2", p + "bn2", y, planes, 3, 1, 1);
      }
      int shortcut = x;
      if (stride != 1 || channels != planes * expansion) {
        shortcut =
            b.ConvBn(p + "downsample.0", p + "downsample.1", x, planes * expansion, 1, stride, 0);
      }
      x = b.Relu(p + "relu", b.Add(p + "add", {y, shortcut}));
      channels = planes * expansion;
    }
  }
  x = b.Flatten("flatten", b.GlobalAvgPool("avgpool", x));
  b.Linear("fc", x, num_classes);
}

// MobileNetV2 (torchvision's names). The CIFAR form keeps full resolution in the stem and the
// second stage (strides 1), as the usual CIFAR adaptation does.
void BuildMobileNetV2(NetworkBuilder& b, bool cifar, int num_classes) {
  struct Stage {
    int expand, channels, blocks, stride;
  };
  const std::vector<Stage> stages = {{1, 16, 1, 1}, {6, 24, 2, cifar ? 1 : 2},
                                     {6, 32, 3, 2}, {6, 64, 4, 2},
                                     {6, 96, 3, 1}, {6, 160, 3, 2},
                                     {6, 320, 1, 1}};
  int x = b.Relu6("features.0.2",
                  b.ConvBn("features.0.0", "features.0.1", b.input(), 32, 3, cifar ? 1 : 2, 1));
  int channels = 32, index = 1;
  for (const Stage& stage : stages) {
    for (int block = 0; block < stage.blocks; ++block) {
      const std::string p = absl::StrCat("features.", index++, ".conv.");
      const int stride = block == 0 ? stage.stride : 1;
      const int hidden = channels * stage.expand;
      int y = x, part = 0;
      if (stage.expand != 1) {
        const std::string q = absl::StrCat(p, part++, ".");
        y = b.Relu6(q + "2", b.ConvBn(q + "0", q + "1", y, hidden, 1, 1, 0));
      }
      const std::string q = absl::StrCat(p, part++, ".");
      y = b.Relu6(q + "2", b.ConvBn(q + "0", q + "1", y, hidden, 3, stride, 1, hidden));
      y = b.Conv(absl::StrCat(p, part), y, stage.channels, 1, 1, 0);
      y = b.BatchNorm(absl::StrCat(p, part + 1), y);
      if (stride == 1 && channels == stage.channels) {
        y = b.Add(absl::StrCat("features.", index - 1, ".add"), {x, y});
      }
      x = y;
      channels = stage.channels;
    }
  }
  x = b.Relu6("features.18.2", b.ConvBn("features.18.0", "features.18.1", x, 1280, 1, 1, 0));
  x = b.Flatten("flatten", b.GlobalAvgPool("avgpool", x));
  b.Linear("classifier.1", x, num_classes);
}

using Builder = std::function<void(NetworkBuilder&, int num_classes)>;

const std::map<std::string, Builder>& Builders() {
  constexpr int M = kMaxPool;
  static const auto* builders = new std::map<std::string, Builder>{
      {"vgg11",
       [](NetworkBuilder& b, int k) {
         BuildVgg(b, {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512}, k);
       }},
      {"vgg13",
       [](NetworkBuilder& b, int k) {
         BuildVgg(b, {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512}, k);
       }},
      {"vgg16",
       [](NetworkBuilder& b, int k) {
         BuildVgg(b, {64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512},
                  k);
       }},
      {"vgg19",
       [](NetworkBuilder& b, int k) {
         BuildVgg(b, {64, 64,  M,   128, 128, M, 256, 256, 256, 256,
                      M,  512, 512, 512, 512, M, 512, 512, 512, 512},
                  k);
       }},
      {"resnet20", [](NetworkBuilder& b, int k) { BuildCifarResNet(b, 20, k); }},
      {"resnet32", [](NetworkBuilder& b, int k) { BuildCifarResNet(b, 32, k); }},
      {"resnet56", [](NetworkBuilder& b, int k) { BuildCifarResNet(b, 56, k); }},
      {"resnet110", [](NetworkBuilder& b, int k) { BuildCifarResNet(b, 110, k); }},
      {"resnet18",
       [](NetworkBuilder& b, int k) {
         BuildImageNetResNet(b, {2, 2, 2, 2}, false, k);
       }},
      {"resnet34",
       [](NetworkBuilder& b, int k) {
         BuildImageNetResNet(b, {3, 4, 6, 3}, false, k);
       }},
      {"resnet50",
       [](NetworkBuilder& b, int k) {
         BuildImageNetResNet(b, {3, 4, 6, 3}, true, k);
       }},
      {"mobilenetv2_cifar", [](NetworkBuilder& b, int k) { BuildMobileNetV2(b, true, k); }},
      {"mobilenetv2", [](NetworkBuilder& b, int k) { BuildMobileNetV2(b, false, k); }},
  };
  return *builders;
}

}  // namespace

absl::StatusOr<Network> BuildModel(absl::string_view arch, int num_classes, Shape input) {
  const auto it = Builders().find(std::string(arch));
  if (it == Builders().end()) {
    std::vector<std::string> names;
    for (const auto& [name, builder] : Builders()) names.push_back(name);
    const auto guess = common::ClosestMatch(arch, names);
    return absl::InvalidArgumentError(
        absl::StrCat("unknown architecture \"", arch, "\"",
                     guess ? absl::StrCat(" (did you mean \"", *guess, "\"?)") : "",
                     "; one of: ", absl::StrJoin(common::KnownArchitectures(), ", ")));
  }
  NetworkBuilder builder(input);
  it->second(builder, num_classes);
  auto network = std::move(builder).Build();
  if (!network.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(arch, " cannot take input [", input.channels,
                                                   ", ", input.height, ", ", input.width,
                                                   "]: ", network.status().message()));
  }
  return network;
}

}  // namespace ocs::worker::engine
