// Benchmark (not a test): simulated tasks per second of wall time through the concurrency
// lesson, each variant alone (counter variants at 100 000 increments/s of one counter, transfer
// variants at 50 000 transfers/s between 4 accounts); then the interleaving explorer, in
// executions per second. Prints a table; never asserts on time.
#include "../plugins/concurrency/explore.hpp"
#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry registry = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  Workload w;
  w.keys = KeyDistribution::uniform(1);
  w.arrivals.rps = 100000;
  for (const char* v : {"unsynchronized", "mutex", "atomic_cas"})
    bench::run_lesson(registry, "concurrency", v, Map{}, w, seconds(10));
  w.arrivals.rps = 50000;
  for (const char* v : {"opposite_order", "lock_order", "try_lock_backoff"})
    bench::run_lesson(registry, "concurrency", v, Map{{"accounts", 4}}, w, seconds(20));
  using concurrency::IncrementKind;
  for (int k = 3; k <= 4; ++k) {
    const concurrency::Program p = concurrency::increment_program(IncrementKind::unsynchronized, k);
    const double start = bench::now_seconds();
    const concurrency::Exploration e = concurrency::explore({p, p});
    bench::report("explore: two unsynchronized threads, k = " + std::to_string(k),
                  static_cast<double>(e.executions), bench::now_seconds() - start, "executions");
  }
  return 0;
}
