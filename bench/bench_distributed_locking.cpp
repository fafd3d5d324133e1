// Benchmark (not a test): jobs per second of wall time through the runtime, per variant. A job
// is about ten events (acquire, grant, read, value, work, write, ack, release, plus retries), so
// this measures the lesson's event path: the slot pool, the phase dispatch and the kernel.
// 10 000 locks over 1 000 000 keys keep contention (and retries) low. Never asserts.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  if (!lessons.has("distributed_locking")) {
    std::fprintf(stderr, "distributed_locking plugin not built\n");
    return 1;
  }
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 200000;
  w.keys = KeyDistribution::uniform(1000000);
  w.service = Distribution::exponential(static_cast<double>(milliseconds(5)));
  for (const char* v : {"no_lease", "lease", "lease_check", "fencing"}) {
    const auto r = bench::run_lesson(lessons, "distributed_locking", v,
                                     {{"clients", 64}, {"resources", 10000}}, w, seconds(10));
    const auto& s = r.systems[0];
    std::printf("  ok %lld, timeouts %lld, counter %lld\n",
                static_cast<long long>(s.count(Outcome::ok)),
                static_cast<long long>(s.count(Outcome::timeout)),
                static_cast<long long>(s.figures.at("counter").as_int()));
  }
  return 0;
}
