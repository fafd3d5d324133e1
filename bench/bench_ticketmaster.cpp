// Benchmark (not a test): simulated purchases per second through the ticketmaster lesson, each
// variant alone on a 20000 rps rush over 100 events with stock that never runs out (every
// purchase takes the full path: read and write, CAS retries, row locks). Prints a table; never
// asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "ticketmaster");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(100);
  for (const char* v :
       {"read_check_write", "optimistic_locking", "atomic_decrement", "pessimistic_lock"}) {
    const ExperimentResult r =
        run_lesson(lessons, "ticketmaster", v,
                   {{"stock", 1000000000}, {"events", 100}, {"max_retries", 1000}}, w, seconds(60));
    std::printf("    sold %lld, db statements %lld, retries %lld\n",
                static_cast<long long>(r.systems[0].figures.at("sold").as_int()),
                static_cast<long long>(r.systems[0].figures.at("db_statements").as_int()),
                static_cast<long long>(r.systems[0].figures.at("retries").as_int()));
  }
  return 0;
}
