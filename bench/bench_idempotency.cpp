// Benchmark (not a test): simulated purchases per second through the idempotency lesson, without
// and with the key store (24 h TTL: the store only grows; 1 s TTL: keys expire as fast as they
// come). Prints a table; never asserts on time.

#include "bench_support.hpp"

using namespace hldlab;

using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "idempotency");
  Workload w;
  w.arrivals.rps = 20000;
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(50)),
                                      static_cast<double>(milliseconds(250)));
  for (const char* v : {"no_retry", "retry", "key_after_charge", "idempotency_key"})
    run_lesson(lessons, "idempotency", v, {{"workers", 5000}}, w, seconds(60));
  run_lesson(lessons, "idempotency", "idempotency_key", {{"workers", 5000}, {"key_ttl", "1s"}}, w,
             seconds(60), "idempotency/idempotency_key key_ttl=1s");
  return 0;
}
