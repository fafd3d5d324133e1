/// @file results.hpp
/// @brief What an experiment produces: one row per system, as JSON and as an aligned table.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hldlab/system.hpp"

namespace hldlab {

struct SystemResult {
  std::string label, lesson, variant;
  bool naive = false;
  std::string error;  ///< non-empty: the system failed ("lesson/variant: message")
  std::int64_t requests = 0, completed = 0;
  std::array<std::int64_t, kOutcomeCount> outcomes{};
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;  ///< seconds, every request
  double p50_ok = 0, p99_ok = 0, p999_ok = 0;  ///< seconds, answered requests (ok, hit, miss)
  double throughput = 0;  ///< successful completions (ok, hit, miss) per second of the run
  double hit_ratio = -1;  ///< hits / (hits + misses); -1 when the system reports neither
  Map metrics;            ///< lesson metrics by declared name
  Map figures;            ///< System::figures()
  std::map<std::string, std::int64_t> faults;  ///< activations per fault (only those > 0)

  std::int64_t count(Outcome o) const { return outcomes[static_cast<int>(o)]; }
};

struct ExperimentResult {
  std::string name;
  std::uint64_t seed = 0;
  double duration = 0;  ///< seconds of traffic
  std::string workload;
  std::vector<SystemResult> systems;
};

nlohmann::json to_json(const Value& v);
nlohmann::json to_json(const SystemResult& r);
nlohmann::json to_json(const ExperimentResult& r);

/// Aligned plain-text table: system, kind, latency quantiles, throughput, outcomes, hit ratio and
/// every lesson figure that some row has (lesson metrics go to JSON and Prometheus only).
std::string format_table(const ExperimentResult& r);
/// "850us", "12.3ms", "1.20s".
std::string format_seconds(double s);
/// A figure as shown in a table cell.
std::string format_value(const Value& v);

}  // namespace hldlab
