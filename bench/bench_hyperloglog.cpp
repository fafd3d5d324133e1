// Benchmark (not a test): operations per second of the hyperloglog lesson's structures
// (HyperLogLog adds, merges and estimates at 2^14 registers; the exact id set), memory against
// the number of distinct ids, and simulated visits per second through the lesson, each variant
// alone. Prints a table; never asserts on time.
#include <cstdio>
#include <vector>

#include "../plugins/hyperloglog/hll.hpp"
#include "bench_support.hpp"

using namespace hldlab;

namespace {

volatile double sink;  // keeps the results from being optimised away

}  // namespace

int main() {
  hll::Work work;
  const std::uint64_t n = 10000000;
  hll::HyperLogLog sketch(14);
  double start = bench::now_seconds();
  for (std::uint64_t id = 0; id < n; ++id) sketch.add_hash(Rng::hash(id), work);
  bench::report("hll add (2^14 registers, hash included)", static_cast<double>(n),
                bench::now_seconds() - start, "ops");

  std::vector<hll::HyperLogLog> servers(10, hll::HyperLogLog(14));
  for (std::uint64_t id = 0; id < 1000000; ++id) servers[id % 10].add_hash(Rng::hash(id), work);
  hll::HyperLogLog merged(14);
  const int counts = 20000;
  double total = 0;
  start = bench::now_seconds();
  for (int i = 0; i < counts; ++i) {
    merged.clear();
    for (const auto& s : servers) merged.merge(s, work);
    total += merged.estimate(work);
  }
  bench::report("count over 10 servers (merge 10 x 2^14, estimate)", counts,
                bench::now_seconds() - start, "counts");
  sink = total;

  hll::IdSet exact(1);
  start = bench::now_seconds();
  for (std::uint64_t id = 0; id < n; ++id) exact.insert(id * 0x9E3779B97F4A7C15ULL, work);
  bench::report("exact id set insert (grows from 16 slots)", static_cast<double>(n),
                bench::now_seconds() - start, "ops");
  std::printf(
      "memory at %.0e distinct ids: exact set %.1f MiB (%.1f B an id), HyperLogLog %zu KiB "
      "per server (estimate %.0f, error %.2f%%)\n",
      static_cast<double>(n), static_cast<double>(exact.memory_bytes()) / (1 << 20),
      static_cast<double>(exact.memory_bytes()) / static_cast<double>(n),
      sketch.memory_bytes() / 1024, sketch.estimate(work),
      100 * (sketch.estimate(work) - static_cast<double>(n)) / static_cast<double>(n));

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "hyperloglog");
  Workload w;
  w.arrivals.rps = 50000;
  w.keys = KeyDistribution::uniform(1000000);
  w.write_share = 0.999;
  for (const char* v : {"exact_set", "sum_of_servers", "hll_raw", "hll"})
    bench::run_lesson(lessons, "hyperloglog", v, {}, w, seconds(20));
  return 0;
}
