// Benchmark (not a test): simulated requests per second through the tail_at_scale lesson, per
// variant, at 10 and 100 leaves. Prints a table; never asserts on time.
#include <string>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "tail_at_scale");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(10000);
  for (int leaves : {10, 100}) {
    for (const char* v : {"fan_out", "monolith", "hedged", "tied", "partial"})
      bench::run_lesson(lessons, "tail_at_scale", v, {{"leaves", leaves}}, w,
                        seconds(leaves == 10 ? 60 : 10),
                        std::string("tail_at_scale/") + v + " N=" + std::to_string(leaves));
  }
  return 0;
}
