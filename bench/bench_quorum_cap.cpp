// Benchmark (not a test): simulated requests per second through the quorum_cap lesson. Prints a
// table; never asserts on time.

#include "bench_support.hpp"

using namespace hldlab;

using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "quorum_cap");
  const Workload w = bench::key_value_workload();
  for (const char* v : {"ap", "cp", "hinted_handoff"})
    run_lesson(lessons, "quorum_cap", v, {}, w, seconds(60));
  return 0;
}
