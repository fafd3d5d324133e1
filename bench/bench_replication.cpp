// Benchmark (not a test): simulated requests per second through the replication lesson. Prints a
// table; never asserts on time.

#include "bench_support.hpp"

using namespace hldlab;

using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "replication");
  const Workload w = bench::key_value_workload();
  for (const char* v :
       {"async_replica_reads", "read_your_writes", "monotonic_reads", "semi_sync", "sync"})
    run_lesson(lessons, "replication", v, {}, w, seconds(60));
  return 0;
}
