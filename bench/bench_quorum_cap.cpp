// Benchmark (not a test): simulated requests per second through the quorum_cap lesson. Prints a
// table; never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  if (!lessons.has("quorum_cap")) {
    std::fprintf(stderr, "the quorum_cap plugin is not built\n");
    return 1;
  }
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(10000);
  w.clients = 10000;
  w.write_share = 0.2;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  for (const char* v : {"ap", "cp", "hinted_handoff"})
    run_lesson(lessons, "quorum_cap", v, {}, w, seconds(60));
  return 0;
}
