// Benchmark (not a test): simulated requests per second through the quorum_cap lesson. Prints a
// table; never asserts on time.
#include <chrono>
#include <cstdio>
#include <string>

#include "hldlab/runtime/experiment.hpp"

using namespace hldlab;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void report(const std::string& name, double count, double seconds, const char* unit) {
  std::printf("%-58s %12.0f %-10s %8.3f s  %10.2f M/s  %8.1f ns each\n", name.c_str(), count, unit,
              seconds, count / seconds / 1e6, seconds / count * 1e9);
}

void bench(const PluginRegistry& registry, const std::string& variant, const Map& params,
           const Workload& w, Time duration) {
  ExperimentConfig config;
  config.duration = duration;
  config.max_requests = 1e9;
  Experiment e(config);
  e.set_workload(w);
  e.add(registry, "quorum_cap", variant, params);
  const double start = now_seconds();
  const auto r = e.run();
  report("quorum_cap/" + variant, static_cast<double>(r.systems[0].completed),
         now_seconds() - start, "requests");
}

}  // namespace

int main() {
  PluginRegistry lessons;
  lessons.load_directory(HLDLAB_BENCH_PLUGIN_DIR);
  if (!lessons.has("quorum_cap")) {
    std::fprintf(stderr, "the quorum_cap plugin is not built\n");
    return 1;
  }
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(10000);
  w.clients = 10000;
  w.write_share = 0.2;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  for (const char* v : {"ap", "cp"}) bench(lessons, v, {}, w, seconds(60));
  return 0;
}
