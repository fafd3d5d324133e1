// Benchmark (not a test): samples ingested per second of wall time through the
// metrics_monitoring lesson, each variant alone: 200 000 samples/s from 100 000 users over 50
// targets for 10 s of virtual time. Prints a table; never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "metrics_monitoring");
  Workload w;
  w.arrivals.rps = 200000;
  w.clients = 100000;
  for (const char* v : {"raw_push", "rollup_push", "rollup_pull"}) {
    const ExperimentResult r =
        bench::run_lesson(lessons, "metrics_monitoring", v, {}, w, seconds(10));
    const auto& figures = r.systems[0].figures;
    std::printf("  %-12s series %.0f, 30-day storage %.3g bytes\n", v,
                figures.at("series").as_double(), figures.at("bytes_30d").as_double());
  }
  return 0;
}
