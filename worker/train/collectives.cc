#include "worker/train/collectives.h"

#include <functional>

#include <ATen/ATen.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef OCS_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#ifdef OCS_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "worker/engine/torch_error.h"

namespace ocs::worker::train {
namespace {

// Since LibTorch 2.0 Gloo and NCCL are c10d backends of a ProcessGroup; before, each was one.
#if TORCH_VERSION_MAJOR >= 2
using ProcessGroupBackend = c10d::Backend;
#else
using ProcessGroupBackend = c10d::ProcessGroup;
#endif

class SingleProcessCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void AllReduceSum(std::vector<at::Tensor>&) override {}
  void Broadcast(std::vector<at::Tensor>&, int) override {}
  void Barrier() override {}
};

// PyTorch 2.4 and later warn when a ProcessGroupNCCL is destroyed before it was shut down (in
// Python, destroy_process_group). Its destructor shuts it down then; doing so first ends the
// group the same way, without the warning at every worker exit. Versions without shutdown() get
// nothing to call.
template <typename Group>
std::function<void()> ShutdownOf(c10::intrusive_ptr<Group> group) {
  if constexpr (requires(Group & g) { g.shutdown(); }) {
    return [group = std::move(group)] { group->shutdown(); };
  } else {
    return {};
  }
}

class ProcessGroupCollectives final : public Collectives {
 public:
  // `shutdown`, when set, ends the group before it is destroyed.
  ProcessGroupCollectives(c10::intrusive_ptr<c10d::Store> store,
                          c10::intrusive_ptr<ProcessGroupBackend> group,
                          std::function<void()> shutdown)
      : store_(std::move(store)), group_(std::move(group)), shutdown_(std::move(shutdown)) {}
  ~ProcessGroupCollectives() override {
    if (!shutdown_) return;
    try {
      shutdown_();
    } catch (const std::exception&) {
      // The group is going away either way; its destructor cleans up what is left.
    }
  }

  int rank() const override { return group_->getRank(); }
  int world_size() const override { return group_->getSize(); }
  void AllReduceSum(std::vector<at::Tensor>& tensors) override {
    // One flat tensor: c10d's allreduce takes one tensor per device.
    if (tensors.empty()) return;
    std::vector<at::Tensor> flat = {FlattenAll(tensors)};
    group_->allreduce(flat)->wait();
    Unflatten(flat[0], tensors);
  }
  void Broadcast(std::vector<at::Tensor>& tensors, int root) override {
    if (tensors.empty()) return;
    std::vector<at::Tensor> flat = {FlattenAll(tensors)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    group_->broadcast(flat, options)->wait();
    Unflatten(flat[0], tensors);
  }
  void Barrier() override { group_->barrier()->wait(); }

 private:
  static at::Tensor FlattenAll(const std::vector<at::Tensor>& tensors) {
    std::vector<at::Tensor> views;
    for (const at::Tensor& t : tensors) views.push_back(t.reshape({-1}));
    return at::cat(views);
  }
  static void Unflatten(const at::Tensor& flat, std::vector<at::Tensor>& tensors) {
    int64_t offset = 0;
    for (at::Tensor& t : tensors) {
      t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<ProcessGroupBackend> group_;
  std::function<void()> shutdown_;
};

}  // namespace

std::unique_ptr<Collectives> SingleProcess() {
  return std::make_unique<SingleProcessCollectives>();
}

absl::StatusOr<std::unique_ptr<Collectives>> JoinProcessGroup(const Rendezvous& r) {
  if (r.world_size == 1 && !r.form_group_alone) return SingleProcess();
  const std::vector<std::string> parts = absl::StrSplit(r.master, absl::MaxSplits(':', 1));
  int port = 0;
  if (parts.size() != 2 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous address \"", r.master, "\" is not host:port"));
  }
  if (r.rank < 0 || r.rank >= r.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", r.rank, " is not in [0, ", r.world_size, ")"));
  }
  // A rank may wait minutes for the others: say for what.
  common::LogInfo(absl::StrCat("joining ", r.world_size, " rank(s) at ", r.master,
                               " (waiting up to ", r.timeout.count(), " s for all of them)"));
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = r.rank == 0;
    options.numWorkers = r.world_size;
    options.waitWorkers = true;
    options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(r.timeout);
    auto store = c10::make_intrusive<c10d::TCPStore>(parts[0], options);
    c10::intrusive_ptr<ProcessGroupBackend> group;
    std::function<void()> shutdown;
    if (r.device == common::Device::kCuda) {
#ifdef OCS_CUDA
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      auto nccl_group =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(store, r.rank, r.world_size, nccl);
      group = nccl_group;
      shutdown = ShutdownOf(std::move(nccl_group));
#else
      return absl::FailedPreconditionError("this worker was built without CUDA (OCS_CUDA=OFF)");
#endif
    } else {
#ifdef OCS_WITH_GLOO
      auto gloo = c10d::ProcessGroupGloo::Options::create();
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(parts[0]));
      gloo->timeout = options.timeout;
      group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, r.rank, r.world_size, gloo);
#else
      return absl::FailedPreconditionError(
          "this worker's LibTorch has no Gloo: CPU ranks need a build against one with it");
#endif
    }
    return std::make_unique<ProcessGroupCollectives>(store, group, std::move(shutdown));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rendezvous at ", r.master, " as rank ", r.rank,
                                               " of ", r.world_size,
                                               " failed: ", engine::DescribeTorchError(e)));
  }
}

GradientAverager::GradientAverager(Collectives& collectives, size_t bucket_bytes)
    : collectives_(collectives), bucket_bytes_(bucket_bytes) {}

void GradientAverager::Plan(const std::vector<at::Tensor>& parameters) {
  shapes_.clear();
  buckets_.assign(1, {});
  size_t bytes = 0;
  for (size_t i = 0; i < parameters.size(); ++i) {
    shapes_.push_back(parameters[i].sizes().vec());
    const size_t size = parameters[i].numel() * parameters[i].element_size();
    if (bytes > 0 && bytes + size > bucket_bytes_) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().push_back(i);
    bytes += size;
  }
}

void GradientAverager::Average(const std::vector<at::Tensor>& parameters) {
  if (collectives_.world_size() == 1) return;
  bool same = shapes_.size() == parameters.size();
  for (size_t i = 0; same && i < parameters.size(); ++i) {
    same = parameters[i].sizes() == at::IntArrayRef(shapes_[i]);
  }
  if (!same) Plan(parameters);
  const double scale = 1.0 / collectives_.world_size();
  for (const std::vector<size_t>& bucket : buckets_) {
    std::vector<at::Tensor> grads;
    for (size_t i : bucket) {
      at::Tensor& grad = const_cast<at::Tensor&>(parameters[i]).mutable_grad();
      if (!grad.defined()) grad = at::zeros_like(parameters[i]);
      grads.push_back(grad);
    }
    collectives_.AllReduceSum(grads);
    for (at::Tensor& grad : grads) grad.mul_(scale);
  }
}

}  // namespace ocs::worker::train
