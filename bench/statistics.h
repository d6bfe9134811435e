// Order statistics of the benches' samples.
#pragma once

#include <algorithm>
#include <vector>

namespace ocs::bench {

// The sample at quantile `q` (0–1) of `values`, nearest rank below; 0 for no samples.
inline double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(q * values.size()));
  std::nth_element(values.begin(), values.begin() + index, values.end());
  return values[index];
}

inline double Median(std::vector<double> values) { return Percentile(std::move(values), 0.5); }

}  // namespace ocs::bench
