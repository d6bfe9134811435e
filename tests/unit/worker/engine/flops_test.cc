// FLOPs (multiply-accumulates of conv and linear layers) and parameters of the model zoo, against
// the published reference values and pinned for every architecture.
#include "worker/engine/flops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "worker/engine/model_zoo.h"

namespace ocs::worker::engine {
namespace {

ModelCost CostOf(const char* arch, int classes, Shape input) {
  auto network = BuildModel(arch, classes, input);
  EXPECT_TRUE(network.ok()) << network.status();
  return network.ok() ? NetworkCost(*network) : ModelCost{};
}

TEST(ModelZooCostTest, MatchesPublishedReferenceValues) {
  // ResNet-18 1.82 G and ResNet-50 4.11 G are ptflops-style totals that add BatchNorm and ReLU
  // elements to the MACs; the MACs alone are torchvision's 1.81 G and 4.09 G.
  const ModelCost resnet18 = CostOf("resnet18", 1000, {3, 224, 224});
  EXPECT_NEAR(resnet18.flops / 1e9, 1.814, 0.0005);
  EXPECT_NEAR((resnet18.flops + resnet18.activation_ops) / 1e9, 1.82, 0.005);
  EXPECT_NEAR(resnet18.params / 1e6, 11.69, 0.005);
  const ModelCost resnet50 = CostOf("resnet50", 1000, {3, 224, 224});
  EXPECT_NEAR(resnet50.flops / 1e9, 4.089, 0.0005);
  EXPECT_NEAR((resnet50.flops + resnet50.activation_ops) / 1e9, 4.11, 0.005);
  EXPECT_NEAR(resnet50.params / 1e6, 25.56, 0.005);
  const ModelCost resnet56 = CostOf("resnet56", 10, {3, 32, 32});
  EXPECT_NEAR(resnet56.flops / 1e6, 125.7, 0.05);
  EXPECT_NEAR(resnet56.params / 1e6, 0.86, 0.005);
  const ModelCost mobilenet = CostOf("mobilenetv2", 1000, {3, 224, 224});
  EXPECT_NEAR(mobilenet.flops / 1e6, 300.8, 0.5);  // torchvision: 0.30 GMACs, 3.50 M
  EXPECT_NEAR(mobilenet.params / 1e6, 3.50, 0.005);
}

// Exact values, so that any change to an architecture is a deliberate one.
TEST(ModelZooCostTest, PinsEveryArchitecture) {
  struct Pin {
    const char* arch;
    int classes;
    Shape input;
    int64_t flops, params;
  };
  const Pin pins[] = {
      {"vgg11", 10, {3, 32, 32}, 152769536, 9231114},
      {"vgg13", 10, {3, 32, 32}, 228267008, 9416010},
      {"vgg16", 10, {3, 32, 32}, 313201664, 14728266},
      {"vgg19", 10, {3, 32, 32}, 398136320, 20040522},
      {"resnet20", 10, {3, 32, 32}, 40813184, 272474},
      {"resnet32", 10, {3, 32, 32}, 69124736, 466906},
      {"resnet56", 10, {3, 32, 32}, 125747840, 855770},
      {"resnet110", 10, {3, 32, 32}, 253149824, 1730714},
      {"resnet20", 10, {1, 28, 28}, 31021952, 272186},
      {"resnet18", 1000, {3, 224, 224}, 1814073344, 11689512},
      {"resnet34", 1000, {3, 224, 224}, 3663761408, 21797672},
      {"resnet50", 1000, {3, 224, 224}, 4089184256, 25557032},
      {"mobilenetv2_cifar", 10, {3, 32, 32}, 87976448, 2236682},
      {"mobilenetv2", 1000, {3, 224, 224}, 300774272, 3504872},
  };
  for (const Pin& pin : pins) {
    const ModelCost cost = CostOf(pin.arch, pin.classes, pin.input);
    EXPECT_EQ(cost.flops, pin.flops) << pin.arch << " " << pin.input.height;
    EXPECT_EQ(cost.params, pin.params) << pin.arch << " " << pin.input.height;
  }
}

TEST(ModelZooTest, RejectsUnknownArchitecturesAndTooSmallInputs) {
  auto unknown = BuildModel("resnet-56", 10, {3, 32, 32});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  auto tiny = BuildModel("vgg16", 10, {3, 8, 8});  // four 2x2 poolings need 16x16
  ASSERT_FALSE(tiny.ok());
  EXPECT_THAT(std::string(tiny.status().message()),
              ::testing::HasSubstr("vgg16 cannot take input [3, 8, 8]: layer features.33"));
}

TEST(ModelZooTest, NamesLayersLikePyTorch) {
  auto resnet56 = BuildModel("resnet56", 10, {3, 32, 32});
  ASSERT_TRUE(resnet56.ok());
  EXPECT_TRUE(resnet56->FindLayer("stage_2.3.conv_b"));
  EXPECT_TRUE(resnet56->FindLayer("stage_2.0.downsample.0"));
  EXPECT_TRUE(resnet56->FindLayer("classifier"));
  auto resnet50 = BuildModel("resnet50", 1000, {3, 224, 224});
  ASSERT_TRUE(resnet50.ok());
  EXPECT_TRUE(resnet50->FindLayer("layer3.5.conv3"));
  EXPECT_TRUE(resnet50->FindLayer("layer4.0.downsample.1"));
  auto vgg = BuildModel("vgg16", 10, {3, 32, 32});
  ASSERT_TRUE(vgg.ok());
  EXPECT_TRUE(vgg->FindLayer("features.40"));  // the last conv, as in torchvision's vgg16_bn
  auto mobilenet = BuildModel("mobilenetv2", 1000, {3, 224, 224});
  ASSERT_TRUE(mobilenet.ok());
  EXPECT_TRUE(mobilenet->FindLayer("features.1.conv.0.0"));  // depthwise of the t=1 block
  EXPECT_TRUE(mobilenet->FindLayer("features.17.conv.1.0"));
  EXPECT_TRUE(mobilenet->FindLayer("classifier.1"));
}

}  // namespace
}  // namespace ocs::worker::engine
