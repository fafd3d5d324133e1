// Benchmark (not a test): simulated requests per second through the load_balancing lesson, every
// variant alone on 100 backends at 90% load (9000 rps, exponential service of 10 ms). Prints a
// table; never asserts on time. An optional argument names another plugin directory (to compare a
// build of the lesson with another).

#include "bench_support.hpp"

using namespace hldlab;

int main(int argc, char** argv) {
  const PluginRegistry lessons =
      bench::load_lessons(argc > 1 ? argv[1] : HLDLAB_BENCH_PLUGIN_DIR, "load_balancing");
  Workload w;
  w.arrivals.rps = 9000;
  w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
  for (const VariantSpec& v : lessons.get("load_balancing").lesson->info().variants)
    bench::run_lesson(lessons, "load_balancing", v.name,
                      {{"backends", 100}, {"health_checks", false}}, w, seconds(60));
  return 0;
}
