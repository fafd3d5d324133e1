/// @file compare.hpp
/// @brief `hldlab diff`: the figures of two result files (of `run` or `tour --json`) side by
/// side, with the change and a marker where it exceeds a threshold.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hldlab {

struct Comparison {
  std::string table;    ///< a line per figure beyond the threshold or missing (all: every figure)
  int compared = 0;     ///< figures present in both
  int beyond = 0;       ///< of them, changed by more than the threshold
  int regressions = 0;  ///< beyond the threshold in the worse direction, or missing in the new
};

/// Compares `base` with `now`. `threshold` is a relative change (0.05 for 5 %). A figure's worse
/// direction: latency, errors, timeouts, rejections and unfinished requests up; throughput,
/// completed requests and hit ratio down; a lesson figure either way (it drifted). Systems or
/// figures of `base` missing from `now` are regressions. Throws std::invalid_argument when a
/// file is not hldlab results.
Comparison compare_results(const nlohmann::json& base, const nlohmann::json& now, double threshold,
                           bool all = false);

}  // namespace hldlab
