// Benchmark (not a test): simulated requests per second through the circuit_breaker lesson, every
// variant alone on a pool of 400 connections, 10 000 rps of lognormal calls (median 20 ms). Prints
// a table; never asserts on time. An optional argument names another plugin directory (to compare a
// build of the lesson with another).

#include "bench_support.hpp"

using namespace hldlab;

int main(int argc, char** argv) {
  const PluginRegistry lessons =
      bench::load_lessons(argc > 1 ? argv[1] : HLDLAB_BENCH_PLUGIN_DIR, "circuit_breaker");
  Workload w;
  w.arrivals.rps = 10000;
  w.keys = KeyDistribution::uniform(1000);
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(20)),
                                      static_cast<double>(milliseconds(100)));
  for (const VariantSpec& v : lessons.get("circuit_breaker").lesson->info().variants)
    bench::run_lesson(lessons, "circuit_breaker", v.name, {{"pool", 400}}, w, seconds(60));
  return 0;
}
