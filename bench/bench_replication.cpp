// Benchmark (not a test): simulated requests per second through the replication lesson. Prints a
// table; never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  if (!lessons.has("replication")) {
    std::fprintf(stderr, "the replication plugin is not built\n");
    return 1;
  }
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(10000);
  w.clients = 10000;
  w.write_share = 0.2;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  for (const char* v :
       {"async_replica_reads", "read_your_writes", "monotonic_reads", "semi_sync", "sync"})
    run_lesson(lessons, "replication", v, {}, w, seconds(60));
  return 0;
}
