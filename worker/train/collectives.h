// The collective operations training needs, behind one interface: a single process (world size
// 1, every operation a no-op) or a PyTorch c10d process group (Gloo on CPU, NCCL on GPUs) formed
// through a c10d TCPStore at a rendezvous address.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "absl/status/statusor.h"
#include "common/job_spec.h"

namespace ocs::worker::train {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Element-wise sum over ranks, in place, as one operation over all `tensors`.
  virtual void AllReduceSum(std::vector<at::Tensor>& tensors) = 0;
  // Copies `root`'s tensors to every rank, in place.
  virtual void Broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual void Barrier() = 0;
};

std::unique_ptr<Collectives> SingleProcess();

struct Rendezvous {
  std::string master;  // "host:port" of rank 0's TCPStore
  int rank = 0;
  int world_size = 1;
  common::Device device = common::Device::kCpu;
  std::chrono::seconds timeout{300};
  // A world of one normally needs no process group; set to form one anyway (the NCCL path on a
  // single GPU, which can host only one NCCL rank).
  bool form_group_alone = false;
};

// Joins (rank 0: hosts) the store and forms the process group. Unavailable when the peers do not
// show up within the timeout; InvalidArgument for a malformed address or rank.
absl::StatusOr<std::unique_ptr<Collectives>> JoinProcessGroup(const Rendezvous& rendezvous);

// Gradient averaging in flattened buckets (not tensor by tensor): the gradients are packed into
// buckets of about `bucket_bytes`, each all-reduced in one operation and unpacked. The layout is
// rebuilt when the parameters' shapes change (after the prune).
class GradientAverager {
 public:
  GradientAverager(Collectives& collectives, size_t bucket_bytes = 25u << 20);
  void Average(const std::vector<at::Tensor>& parameters);

 private:
  void Plan(const std::vector<at::Tensor>& parameters);

  Collectives& collectives_;
  size_t bucket_bytes_;
  std::vector<std::vector<int64_t>> shapes_;  // the layout the buckets were planned for
  std::vector<std::vector<size_t>> buckets_;  // parameter indices per bucket
};

}  // namespace ocs::worker::train
