// Benchmark (not a test): simulated requests per second through the consensus lesson, and
// crash/elect trials per second (the Raft figure 16 measurement). Prints a table; never asserts
// on time.

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "consensus");
  const Workload w = bench::key_value_workload();
  for (const char* v : {"fixed", "randomized"})
    bench::run_lesson(lessons, "consensus", v, {}, w, seconds(60));
  // 1000 crash/elect trials on an otherwise idle cluster (100 for fixed timeouts, as in the
  // paper: each takes seconds of virtual time).
  for (const char* v : {"fixed", "randomized"}) {
    const std::int64_t trials = v == std::string("fixed") ? 100 : 1000;
    Experiment e({.duration = seconds(1), .drain = seconds(1e6)});
    e.set_workload(Workload{});
    SystemSlot& s = e.add(lessons, "consensus", v);
    s.call("elections", {{"trials", trials}});
    const double start = bench::now_seconds();
    const auto r = e.run();
    bench::report(
        std::string("consensus/") + v + " elections{trials=" + std::to_string(trials) + "}",
        r.systems[0].figures.at("elections").as_double(), bench::now_seconds() - start,
        "elections");
  }
  return 0;
}
