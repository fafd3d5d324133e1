// Benchmark (not a test): simulated requests per second through each rate limiter at 10x
// overload (most requests answered 429 at once, the rest served by the backend), and through the
// circuit breaker variants. Prints a table; never asserts on time.
#include "bench_support.hpp"

using namespace hldlab;

using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);

  if (lessons.has("rate_limiting")) {
    Workload w;  // 100 000 rps from 1000 clients on 1000 rps of capacity
    w.arrivals.rps = 100000;
    w.clients = 1000;
    w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
    for (const char* v :
         {"fixed_window", "sliding_log", "sliding_window", "token_bucket", "leaky_bucket", "gcra"})
      run_lesson(lessons, "rate_limiting", v, {{"limit", 1}, {"capacity", 10}}, w, seconds(60));
  }
  if (lessons.has("circuit_breaker")) {
    Workload w;
    w.arrivals.rps = 20000;
    w.service = Distribution::exponential(static_cast<double>(milliseconds(1)));
    for (const char* v : {"none", "breaker", "bulkhead", "breaker_bulkhead"})
      run_lesson(lessons, "circuit_breaker", v, {{"pool", 200}}, w, seconds(60));
  }
  return 0;
}
