// The learning rate at an iteration, stepped per iteration as the official code does:
//   multistep: lr · gamma^(number of milestones passed), milestones at fractions of all iterations
//   cosine:    lr · (1 + cos(π · iteration / total)) / 2
#pragma once

#include <cstdint>

#include "common/job_spec.h"

namespace ocs::common {

double LearningRate(const OptimizerSpec& optimizer, const ScheduleSpec& schedule, int64_t iteration,
                    int64_t total_iterations);

}  // namespace ocs::common
