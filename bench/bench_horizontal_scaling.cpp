// Benchmark (not a test): simulated requests per second through the horizontal_scaling lesson,
// every variant alone on 20 servers of 8 workers at 66% load (5000 rps, exponential service of 20
// ms). Prints a table; never asserts on time. An optional argument names another plugin directory
// (to compare a build of the lesson with another).

#include "bench_support.hpp"

using namespace hldlab;

int main(int argc, char** argv) {
  const PluginRegistry lessons =
      bench::load_lessons(argc > 1 ? argv[1] : HLDLAB_BENCH_PLUGIN_DIR, "horizontal_scaling");
  Workload w;
  w.arrivals.rps = 5000;
  w.clients = 10000;
  w.service = Distribution::exponential(static_cast<double>(milliseconds(20)));
  for (const VariantSpec& v : lessons.get("horizontal_scaling").lesson->info().variants)
    bench::run_lesson(lessons, "horizontal_scaling", v.name,
                      {{"servers", 20}, {"big_workers", 160}, {"queue_limit", 1000}}, w,
                      seconds(60));
  return 0;
}
