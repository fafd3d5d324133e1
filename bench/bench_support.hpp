// Shared by the benchmarks: wall-clock timing, one printed line per measurement, loading the
// lessons, a common workload, and running one lesson variant alone on a workload. Benchmarks print
// figures; they never assert on time.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
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

/// The lessons in `dir`; exits with status 1 when `lesson`, the one the benchmark measures, is
/// not among them.
inline PluginRegistry load_lessons(const std::string& dir, const std::string& lesson) {
  PluginRegistry registry = load_lessons(dir);
  if (!registry.has(lesson)) {
    std::fprintf(stderr, "the %s plugin is not built\n", lesson.c_str());
    std::exit(1);
  }
  return registry;
}

/// The traffic of a replicated key-value store (the replication, quorum_cap and consensus
/// benchmarks): 20 000 requests/s from 10 000 clients over 10 000 uniform keys, 20 % writes,
/// 1 ms of service each.
inline Workload key_value_workload() {
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(10000);
  w.clients = 10000;
  w.write_share = 0.2;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  return w;
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
