// Benchmark (not a test): simulated requests per second through each rate limiter at 10x
// overload (most requests answered 429 at once, the rest served by the backend), and through the
// circuit breaker variants. Prints a table; never asserts on time.
#include <chrono>
#include <cstdio>
#include <string>

#include "hldlab/runtime/experiment.hpp"

using namespace hldlab;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void bench(const PluginRegistry& registry, const std::string& lesson, const std::string& variant,
           const Map& params, const Workload& w, Time duration) {
  ExperimentConfig config;
  config.duration = duration;
  config.max_requests = 1e9;
  Experiment e(config);
  e.set_workload(w);
  e.add(registry, lesson, variant, params);
  const double start = now_seconds();
  const auto r = e.run();
  const double elapsed = now_seconds() - start;
  const auto n = static_cast<double>(r.systems[0].completed);
  const std::string name = lesson + "/" + variant;
  std::printf("%-34s %10.0f requests %8.3f s %8.2f M/s %8.1f ns each\n", name.c_str(), n, elapsed,
              n / elapsed / 1e6, elapsed / n * 1e9);
}

}  // namespace

int main() {
  PluginRegistry lessons;
  lessons.load_directory(HLDLAB_BENCH_PLUGIN_DIR);
  for (const auto& e : lessons.errors()) std::fprintf(stderr, "plugin refused: %s\n", e.c_str());

  if (lessons.has("rate_limiting")) {
    Workload w;  // 100 000 rps from 1000 clients on 1000 rps of capacity
    w.arrivals.rps = 100000;
    w.clients = 1000;
    w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
    for (const char* v :
         {"fixed_window", "sliding_log", "sliding_window", "token_bucket", "leaky_bucket", "gcra"})
      bench(lessons, "rate_limiting", v, {{"limit", 1}, {"capacity", 10}}, w, seconds(60));
  }
  if (lessons.has("circuit_breaker")) {
    Workload w;
    w.arrivals.rps = 20000;
    w.service = Distribution::exponential(static_cast<double>(milliseconds(1)));
    for (const char* v : {"none", "breaker", "bulkhead", "breaker_bulkhead"})
      bench(lessons, "circuit_breaker", v, {{"pool", 200}}, w, seconds(60));
  }
  return 0;
}
