// Benchmark (not a test): simulated clicks per second through the click_analytics lesson, each
// variant alone on 20000 clicks/s over 1000 ads (Zipf) for 60 s of virtual time, with the
// default delays, late clicks and repeats. The database is sized for the naive variant
// (64 workers: 32000 rows/s) so that every click takes its full path. Prints a table; never
// asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "click_analytics");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::zipf(1000, 1.1);
  for (const char* v :
       {"insert_every_click", "processing_time", "event_time", "event_time_dedup"}) {
    const ExperimentResult r =
        bench::run_lesson(lessons, "click_analytics", v, {{"db_workers", 64}}, w, seconds(60));
    const auto& f = r.systems[0].figures;
    std::printf("    db writes %lld, dropped late %lld, repeats removed %lld, state %lld B\n",
                static_cast<long long>(f.at("db_writes").as_int()),
                static_cast<long long>(f.at("dropped_late").as_int()),
                static_cast<long long>(f.at("duplicates_removed").as_int()),
                static_cast<long long>(f.at("state_bytes").as_int()));
  }
  return 0;
}
