/// @file results.hpp
/// @brief What an experiment produces: one row per system, as JSON and as an aligned table.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "hldlab/lesson.hpp"
#include "hldlab/runtime/recorder.hpp"
#include "hldlab/system.hpp"

namespace hldlab {

/// A message between two nodes of a system, for its space-time diagram.
struct TracedMessage {
  int from, to;
  Time sent, received;
  std::string label;
};
/// Something that happened on a node (an election, a crash, a fault).
struct TracedEvent {
  int node;
  Time at;
  std::string label;
};

struct SystemResult {
  std::string label, lesson, variant;
  bool naive = false;
  bool uses_service_time = true;
  std::string error;  ///< non-empty: the system failed ("lesson/variant: message")
  std::int64_t requests = 0;    ///< arrived (from the end of the warm-up on)
  std::int64_t completed = 0;   ///< ended with an outcome
  std::int64_t unfinished = 0;  ///< arrived and not completed when the system ended
  std::array<std::int64_t, kOutcomeCount> outcomes{};
  /// Latency in seconds over every request; an unfinished one counts as its age at the end.
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
  double p50_ok = 0, p99_ok = 0, p999_ok = 0;  ///< the same without rejections and errors
  /// Latency figures ("p99", "max", "p99_ok", ...) decided by an unfinished request: the true
  /// value is at least this (a censored quantile).
  std::vector<std::string> lower_bounds;
  /// Answers (ok, hit, miss) per second, over the time from the start of counting to the last
  /// answer, at least the traffic duration.
  double throughput = 0;
  double hit_ratio = -1;  ///< hits / (hits + misses); -1 when the system reports neither
  double end = 0;         ///< seconds: when the system ended (idle after the traffic, drain limit,
                          ///< failure or interruption)
  Map metrics;            ///< lesson metrics by declared name (name{label=value} when labelled)
  Map figures;            ///< System::figures()
  std::map<std::string, Unit> figure_units;  ///< the declared unit of each figure
  std::map<std::string, std::int64_t> faults;  ///< activations per fault (only those > 0)
  /// The timeline: per-window figures in virtual time (every request, warm-up included), each
  /// lesson metric at every window's end, and the fault injections.
  double timeline_window = 0;  ///< seconds
  std::vector<Recorder::Window> timeline;
  std::vector<std::pair<std::string, std::vector<double>>> timeline_metrics;
  std::vector<Recorder::FaultMark> fault_marks;
  /// A compact latency CDF of every counted completion, for the report: (seconds, fraction of
  /// completions at or below), ascending, at most about 200 points (not in the JSON).
  std::vector<std::pair<double, double>> latency_cdf;
  /// Messages and node events recorded by sys:trace{...} (empty unless asked).
  std::vector<TracedMessage> messages;
  std::vector<TracedEvent> node_events;
  double trace_from = 0, trace_to = 0;  ///< seconds: the traced window

  std::int64_t count(Outcome o) const { return outcomes[static_cast<int>(o)]; }
  bool lower_bound(const std::string& figure) const {
    return std::find(lower_bounds.begin(), lower_bounds.end(), figure) != lower_bounds.end();
  }
};

struct ExperimentResult {
  std::string name;
  std::uint64_t seed = 0;
  double duration = 0;  ///< seconds of traffic
  double warmup = 0;    ///< seconds before statistics count
  bool interrupted = false;
  std::string workload;
  std::vector<SystemResult> systems;
};

nlohmann::json to_json(const Value& v);
nlohmann::json to_json(const SystemResult& r);
nlohmann::json to_json(const ExperimentResult& r);

/// Aligned plain-text tables: system, kind, latency quantiles ("≥" marks a lower bound),
/// throughput, outcomes, unfinished requests and hit ratio; under it the lesson figures, in as
/// many tables as needed to stay within 100 columns; then a warning line per system with
/// unfinished requests. Lesson metrics go to JSON and Prometheus only.
std::string format_table(const ExperimentResult& r);
/// Every system's timeline as CSV, one row per system and window: experiment, system, lesson,
/// variant, window start and end (seconds), arrivals, each outcome, in flight, p50, p99, p999
/// (seconds), then one column per lesson metric (empty where a system has none).
std::string timeline_csv(const std::vector<ExperimentResult>& experiments);
/// "850us", "12.3ms", "1.20s".
std::string format_seconds(double s);
/// A figure as shown in a table cell.
std::string format_value(const Value& v);
/// A figure in its unit: "12.3%", "1.5ms", "2.0 MiB", "120/s".
std::string format_figure(const Value& v, Unit unit);
/// "count", "fraction", "seconds", ...
const char* unit_name(Unit unit);

}  // namespace hldlab
