// Benchmark (not a test): ids generated per second of wall time through the runtime, per id
// scheme, including the final duplicate/ordering check (a sort of every id). Never asserts.
#include <chrono>
#include <cstdio>
#include <string>

#include "hldlab/runtime/experiment.hpp"

using namespace hldlab;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void bench(const PluginRegistry& registry, const char* variant, int workers) {
  ExperimentConfig config;
  config.duration = seconds(5);
  config.max_requests = 1e9;
  Experiment e(config);
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 1e6;
  w.service = Distribution::constant(0);
  e.set_workload(w);
  e.add(registry, "snowflake_ids", variant, {{"workers", workers}});
  const double start = now_seconds();
  const auto r = e.run();
  const double elapsed = now_seconds() - start;
  const auto& s = r.systems[0];
  std::printf("%-16s %4d workers %10lld ids %8.3f s %8.1f ns/id  duplicates %lld\n", variant,
              workers, static_cast<long long>(s.figures.at("ids").as_int()), elapsed,
              elapsed / static_cast<double>(s.completed) * 1e9,
              static_cast<long long>(s.figures.at("duplicates").as_int()));
}

}  // namespace

int main() {
  PluginRegistry lessons;
  lessons.load_directory(HLDLAB_BENCH_PLUGIN_DIR);
  for (const auto& e : lessons.errors()) std::fprintf(stderr, "plugin refused: %s\n", e.c_str());
  if (!lessons.has("snowflake_ids")) {
    std::fprintf(stderr, "snowflake_ids plugin not built\n");
    return 1;
  }
  bench(lessons, "auto_increment", 2);
  bench(lessons, "snowflake", 8);
  bench(lessons, "sonyflake", 100);
  return 0;
}
