// Benchmark (not a test): simulated transactions per second of wall time through the
// acid_transactions lesson, each isolation level alone, per workload; then the transactional
// checker on the recorded history of one of them. Prints a table; never asserts on time.
#include "bench_support.hpp"
#include "hldlab/runtime/checkers.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry registry = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  Workload w;
  w.arrivals.rps = 400;
  w.keys = KeyDistribution::uniform(1);
  for (const char* workload : {"counters", "bank", "doctors"})
    for (const char* level :
         {"read_uncommitted", "read_committed", "snapshot_isolation", "serializable"})
      bench::run_lesson(registry, "acid_transactions", level, Map{{"workload", workload}}, w,
                        seconds(300), std::string("acid_transactions/") + level + " " + workload);
  // The checker on 10^4-odd transactions (25 s at 400/s), read committed on the bank.
  Experiment e({.duration = seconds(25)});
  e.set_workload(w);
  SystemSlot& slot = e.add(registry, "acid_transactions", "read_committed",
                           Map{{"workload", "bank"}}, "", 1000000);
  e.run();
  const double start = bench::now_seconds();
  const TransactionsResult r = check_transactions(*slot.history());
  bench::report(
      "check_transactions, read_committed bank -> " + std::string(verdict_name(r.verdict)),
      static_cast<double>(slot.history()->size()), bench::now_seconds() - start, "txns");
  return 0;
}
