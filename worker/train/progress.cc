#include "worker/train/progress.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ocs::worker::train {
namespace {

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, s / 60 % 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

}  // namespace

std::string FormatEpochLine(const EpochRecord& r, int total_epochs, double eta_seconds) {
  return absl::StrFormat(
      "epoch %3d/%d  %-8s  loss %.3f acc %5.1f%%  test %.3f %5.1f%%  lr %.4f  J̄ %s  %s  "
      "%.0f img/s  ETA %s",
      r.epoch + 1, total_epochs, common::ToString(r.phase), r.train_loss, 100 * r.train_accuracy,
      r.test_loss, 100 * r.test_accuracy, r.lr,
      r.j_bar ? absl::StrFormat("%.4f", *r.j_bar) : std::string("  -   "),
      absl::StrFormat("FLOPs %.1fM", r.flops / 1e6), r.images_per_second, Duration(eta_seconds));
}

void ProgressBar::Update(int64_t done, int64_t total) {
  if (!enabled_ || total <= 0) return;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / total);
  if (filled == last_width_ && done != total) return;
  last_width_ = filled;
  std::fprintf(stderr, "\r  [%s%s] %lld/%lld", std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(), static_cast<long long>(done),
               static_cast<long long>(total));
  std::fflush(stderr);
}

void ProgressBar::Clear() {
  if (!enabled_ || last_width_ < 0) return;
  std::fprintf(stderr, "\r%60s\r", "");
  std::fflush(stderr);
  last_width_ = -1;
}

}  // namespace ocs::worker::train
