// Benchmark (not a test): simulated requests per second through the retry_backoff lesson, every
// variant alone on 2000 clients per second updating 1000 rows. Prints a table; never asserts on
// time. An optional argument names another plugin directory (to compare a build of the lesson with
// another).

#include "bench_support.hpp"

using namespace hldlab;

int main(int argc, char** argv) {
  const PluginRegistry lessons =
      bench::load_lessons(argc > 1 ? argv[1] : HLDLAB_BENCH_PLUGIN_DIR, "retry_backoff");
  Workload w;
  w.arrivals.rps = 2000;
  w.keys = KeyDistribution::uniform(1000);
  for (const VariantSpec& v : lessons.get("retry_backoff").lesson->info().variants)
    bench::run_lesson(lessons, "retry_backoff", v.name, {{"rows", 1000}}, w, seconds(60));
  return 0;
}
