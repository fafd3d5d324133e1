// Benchmark (not a test): simulated requests per second through the event_sourcing lesson,
// each variant alone on 2000 requests/s (30% deposits, 10% of reads audits) over 10000
// accounts (Zipf, s = 1.1) for 60 s of virtual time: stream loads replay real events, so the
// variants without snapshots do work that grows with the streams. Prints a table; never
// asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "event_sourcing");
  Workload w;
  w.arrivals.rps = 2000;
  w.keys = KeyDistribution::zipf(10000, 1.1);
  w.write_share = 0.3;
  for (const char* v : {"mutable_rows", "event_log", "read_your_writes", "snapshots"}) {
    const ExperimentResult r = bench::run_lesson(
        lessons, "event_sourcing", v, {{"accounts", 10000}, {"db_workers", 256}}, w, seconds(60));
    const auto& f = r.systems[0].figures;
    std::printf("    events replayed per load %.1f, longest stream %lld, conflicts %lld\n",
                f.at("replayed_mean").as_double(),
                static_cast<long long>(f.at("stream_max").as_int()),
                static_cast<long long>(f.at("conflicts").as_int()));
  }
  return 0;
}
