// Benchmark (not a test): simulated requests per second through the cdn lesson, per variant and
// with stale serving on, Zipf traffic with 1 % updates. Prints a table; never asserts on time.

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "cdn");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::zipf(100000, 1.0);
  w.clients = 30000;
  w.write_share = 0.01;
  for (const char* v : {"origin_only", "edge", "edge_shield"})
    bench::run_lesson(lessons, "cdn", v, {}, w, seconds(60));
  bench::run_lesson(lessons, "cdn", "edge_shield",
                    {{"max_age", 5}, {"stale_while_revalidate", 60}, {"invalidation", "purge"}}, w,
                    seconds(60), "cdn/edge_shield max-age 5s, swr, purge");
  return 0;
}
