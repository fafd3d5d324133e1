// Benchmark (not a test): simulated records per second through the kafka_log lesson, each variant
// alone on 20 000 records/s for 60 s over 100 000 keys (24 partitions, 24 consumers at 50% load,
// acks and replication on every record). Prints records per second of wall time; never asserts
// on time.

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "kafka_log");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::uniform(100000);
  w.service = Distribution::exponential(static_cast<double>(microseconds(600)));
  for (const char* v : {"in_memory_queue", "round_robin", "commit_before", "acks_1",
                        "unclean_election", "eager_rebalance", "partitioned_log"})
    bench::run_lesson(lessons, "kafka_log", v, {{"partitions", 24}, {"consumers", 24}}, w,
                      seconds(60));
  return 0;
}
