// Benchmark (not a test): simulated requests per second through the chaos lesson, each variant
// alone on 20 000 rps over 10 000 keys (16 replicas of 16 workers, a database of 64 workers),
// 30 s in calm weather, then 30 s under the chaos monkey (a kill every 2 s, down 1 s: timers,
// retries and health checks at work). Prints a table; never asserts on time. An optional
// argument names another plugin directory.

#include "bench_support.hpp"

using namespace hldlab;

namespace {

void run(const PluginRegistry& lessons, const std::string& variant, bool chaos, const Workload& w) {
  Experiment e({.duration = seconds(30), .max_requests = 1e9});
  e.set_workload(w);
  SystemSlot& s = e.add(lessons, "chaos", variant,
                        {{"replicas", 16}, {"replica_workers", 16}, {"db_workers", 64}});
  if (chaos) e.at(0, [&s] { s.inject("chaos_monkey", {{"interval", 2.0}, {"downtime", 1.0}}); });
  const double start = bench::now_seconds();
  const ExperimentResult r = e.run();
  bench::report("chaos/" + variant + (chaos ? " under the chaos monkey" : " calm"),
                static_cast<double>(r.systems[0].completed), bench::now_seconds() - start,
                "requests");
}

}  // namespace

int main(int argc, char** argv) {
  const PluginRegistry lessons =
      bench::load_lessons(argc > 1 ? argv[1] : HLDLAB_BENCH_PLUGIN_DIR, "chaos");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(10000);
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(5)),
                                      static_cast<double>(milliseconds(30)));
  for (const char* v : {"naive", "resilient"})
    for (bool chaos : {false, true}) run(lessons, v, chaos, w);
  return 0;
}
