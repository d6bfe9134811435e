#include "common/job_spec.h"

namespace ocs::common {

const char* ToString(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kCifar10:
      return "cifar10";
    case DatasetKind::kCifar100:
      return "cifar100";
    case DatasetKind::kFashionMnist:
      return "fashion-mnist";
    case DatasetKind::kMnist:
      return "mnist";
    case DatasetKind::kSynthetic:
      return "synthetic";
  }
  return "unknown";
}

const char* ToString(ScheduleType type) {
  switch (type) {
    case ScheduleType::kMultiStep:
      return "multistep";
    case ScheduleType::kCosine:
      return "cosine";
  }
  return "unknown";
}

const char* ToString(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
  }
  return "unknown";
}

const char* ToString(RegularizationMode mode) {
  switch (mode) {
    case RegularizationMode::kDecoupled:
      return "decoupled";
    case RegularizationMode::kGroupLasso:
      return "groupLasso";
  }
  return "unknown";
}

const char* ToString(Device device) {
  switch (device) {
    case Device::kCuda:
      return "cuda";
    case Device::kCpu:
      return "cpu";
  }
  return "unknown";
}

const std::vector<std::string>& KnownArchitectures() {
  static const std::vector<std::string> kArchitectures = {
      "vgg11",      "vgg13",     "vgg16",    "vgg19",    "resnet20", "resnet32",
      "resnet56",   "resnet110", "resnet18", "resnet34", "resnet50", "mobilenetv2_cifar",
      "mobilenetv2"};
  return kArchitectures;
}

}  // namespace ocs::common
