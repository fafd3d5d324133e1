// Benchmark (not a test): simulated notifications per second through the
// scheduler_notifications lesson, each variant alone on 5000 notifications/s (half of them
// scheduled up to 30 s ahead) for 60 s of virtual time, over 10 providers that take 1000/s
// each (with a burst large enough for a whole tick of due jobs) and fail 2% of sends. Prints
// a table; never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons =
      bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "scheduler_notifications");
  Workload w;
  w.arrivals.rps = 5000;
  w.keys = KeyDistribution::uniform(100000);
  for (const char* v : {"single_cron", "two_crons", "leased_shards", "queued_pipeline"}) {
    const ExperimentResult r = bench::run_lesson(lessons, "scheduler_notifications", v,
                                                 {{"providers", 10},
                                                  {"provider_rate", 1000.0},
                                                  {"provider_burst", 1e6},
                                                  {"send_rate", 900.0}},
                                                 w, seconds(60));
    const auto& f = r.systems[0].figures;
    std::printf("    delivered %lld, duplicates %lld, lost %lld, retries %lld\n",
                static_cast<long long>(f.at("delivered").as_int()),
                static_cast<long long>(f.at("duplicates").as_int()),
                static_cast<long long>(f.at("lost").as_int()),
                static_cast<long long>(f.at("retries").as_int()));
  }
  return 0;
}
