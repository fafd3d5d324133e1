/// @file lognormal_durations.hpp
/// @brief lognormal_durations: the lognormal distribution of a pair of duration parameters
/// `<name>_median` and `<name>_p99` (database query time, replication lag, a leaf call's work),
/// validated in the parameters' own names.
///
/// @code
///   {"db_median", ParamType::duration, "2ms", "median database query time", 1e-6, 100},
///   {"db_p99", ParamType::duration, "20ms", "99th percentile database query time", 1e-6, 100},
///   ...
///   db_time_(lognormal_durations(p, "db"))
/// @endcode
#pragma once

#include <string>

#include "hldlab/distribution.hpp"
#include "hldlab/lesson.hpp"

namespace hldlab {

/// Distribution::lognormal(`<name>_median`, `<name>_p99`). A p99 below the median is refused. A
/// median of 0 (where the parameter table allows it) means no time at all: the constant 0, and
/// then the p99 must be 0 too.
inline Distribution lognormal_durations(const Params& p, const std::string& name) {
  const auto median = static_cast<double>(p.duration(name + "_median"));
  const auto p99 = static_cast<double>(p.duration(name + "_p99"));
  if (p99 < median) throw std::invalid_argument(name + "_p99 must be at least " + name + "_median");
  if (median > 0) return Distribution::lognormal(median, p99);
  if (p99 > 0)
    throw std::invalid_argument(name + "_median must be positive when " + name +
                                "_p99 is (lognormal)");
  return Distribution::constant(0);
}

}  // namespace hldlab
