#include "common/lr_schedule.h"

#include <cmath>

namespace ocs::common {

double LearningRate(const OptimizerSpec& optimizer, const ScheduleSpec& schedule, int64_t iteration,
                    int64_t total_iterations) {
  if (total_iterations <= 0) return optimizer.lr;
  switch (schedule.type) {
    case ScheduleType::kMultiStep: {
      double lr = optimizer.lr;
      for (double milestone : schedule.milestones) {
        // A milestone at fraction f of the run takes effect at iteration ⌊f · total⌋.
        if (iteration >= static_cast<int64_t>(milestone * static_cast<double>(total_iterations))) {
          lr *= schedule.gamma;
        }
      }
      return lr;
    }
    case ScheduleType::kCosine:
      return optimizer.lr * 0.5 *
             (1.0 + std::cos(M_PI * static_cast<double>(iteration) /
                             static_cast<double>(total_iterations)));
  }
  return optimizer.lr;
}

}  // namespace ocs::common
