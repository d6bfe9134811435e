// What a standalone run shows on the terminal: one line per epoch, and a bar within the epoch
// when stderr is a terminal.
#pragma once

#include <cstdint>
#include <string>

#include "worker/train/trainer.h"

namespace ocs::worker::train {

// "epoch   3/12  phase sparsity  loss 0.512 acc 81.2%  test 0.433 84.5%  lr 0.1000  J̄ 0.912 …"
std::string FormatEpochLine(const EpochRecord& record, int total_epochs, double eta_seconds);

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void Update(int64_t done, int64_t total);
  void Clear();

 private:
  bool enabled_;
  int last_width_ = -1;
};

}  // namespace ocs::worker::train
