// Benchmark (not a test): simulated orders per second through the outbox lesson, each variant
// alone on 500 orders/s for 600 s (the relay and the connector publish one event per
// millisecond, so they keep up). Prints orders per second of wall time; never asserts on time.

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "outbox");
  Workload w;
  w.arrivals.rps = 500;
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(5)),
                                      static_cast<double>(milliseconds(30)));
  for (const char* v : {"write_then_publish", "publish_then_write", "transactional_outbox", "cdc"})
    bench::run_lesson(lessons, "outbox", v, {}, w, seconds(600));
  return 0;
}
