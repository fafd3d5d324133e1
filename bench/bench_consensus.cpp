// Benchmark (not a test): simulated requests per second through the consensus lesson. Prints a
// table; never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

using bench::now_seconds;
using bench::report;
using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  if (!lessons.has("consensus")) {
    std::fprintf(stderr, "the consensus plugin is not built\n");
    return 1;
  }
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(10000);
  w.clients = 10000;
  w.write_share = 0.2;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  for (const char* v : {"fixed", "randomized"})
    run_lesson(lessons, "consensus", v, {}, w, seconds(60));
  // Elections per second of wall time in the trial loop (Raft figure 16 measurement).
  for (const char* v : {"fixed", "randomized"}) {
    ExperimentConfig config;
    Experiment e(config);
    SystemSlot& s = e.add(lessons, "consensus", v);
    const double start = now_seconds();
    const Value r = s.call("elections", {{"trials", 1000}});
    report(std::string("consensus/") + v + " elections{trials=1000}",
           static_cast<double>(r["trials"].as_int()), now_seconds() - start, "elections");
  }
  return 0;
}
