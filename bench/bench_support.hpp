// Shared by the benchmarks: wall-clock timing, one printed line per measurement, and running one
// lesson variant alone on a workload. Benchmarks print figures; they never assert on time.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "hldlab/runtime/experiment.hpp"

namespace hldlab::bench {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// "name  count unit  seconds  M/s  ns each"
inline void report(const std::string& name, double count, double seconds, const char* unit) {
  std::printf("%-58s %12.0f %-10s %8.3f s  %10.2f M/s  %8.1f ns each\n", name.c_str(), count, unit,
              seconds, count / seconds / 1e6, seconds / count * 1e9);
}

/// The lessons in `dir`, refusals printed on stderr.
inline PluginRegistry load_lessons(const std::string& dir) {
  PluginRegistry registry;
  registry.load_directory(dir);
  for (const auto& e : registry.errors()) std::fprintf(stderr, "plugin refused: %s\n", e.c_str());
  return registry;
}

/// Run `lesson`/`variant` alone on `w` for `duration` of virtual time on `jobs` threads, report
/// the completed requests per second of wall time under `name` (default "lesson/variant"),
/// return the result.
inline ExperimentResult run_lesson(const PluginRegistry& registry, const std::string& lesson,
                                   const std::string& variant, const Map& params, const Workload& w,
                                   Time duration, std::string name = "", unsigned jobs = 1) {
  ExperimentConfig config;
  config.duration = duration;
  config.max_requests = 1e9;
  Experiment e(config);
  e.set_workload(w);
  e.add(registry, lesson, variant, params);
  const double start = now_seconds();
  RunOptions options;
  options.jobs = jobs;
  ExperimentResult r = e.run(options);
  if (name.empty()) name = lesson + "/" + variant;
  report(name, static_cast<double>(r.systems[0].completed), now_seconds() - start, "requests");
  return r;
}

}  // namespace hldlab::bench
