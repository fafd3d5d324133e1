// Benchmark (not a test): operations per second of the bloom_filter lesson's structures on a
// million usernames (a Bloom filter at 1%, a counting Bloom filter, the exact name set), and
// simulated checks per second through the lesson, each variant alone. Prints a table; never
// asserts on time.
#include <cstdio>

#include "../plugins/bloom_filter/bloom.hpp"
#include "bench_support.hpp"

using namespace hldlab;

namespace {

volatile std::uint64_t sink;  // keeps the lookups from being optimised away

/// Time `op(id)` over ids [first, first + count) and report it.
template <class Op>
void time_ops(const std::string& name, std::uint64_t first, std::uint64_t count, Op op) {
  std::uint64_t hits = 0;
  const double start = bench::now_seconds();
  for (std::uint64_t id = first; id < first + count; ++id) hits += op(id);
  bench::report(name, static_cast<double>(count), bench::now_seconds() - start, "ops");
  sink = hits;
}

}  // namespace

int main() {
  const std::uint64_t n = 1000000;
  const double bits_per_key = bloom::bits_per_key_for(0.01);
  const auto cells = static_cast<std::uint64_t>(bits_per_key * static_cast<double>(n));
  bloom::BloomFilter filter(cells, 7, 1);
  bloom::CountingBloomFilter counting(cells, 7, 1);
  bloom::NameSet exact(1);
  bloom::Work work;
  char buffer[16];
  auto name = [&buffer](std::uint64_t id) { return bloom::username(id, buffer); };

  time_ops("bloom add (1M names, 9.6 bits, k = 7)", 0, n, [&](std::uint64_t id) {
    filter.add(name(id), work);
    return 1;
  });
  time_ops("bloom lookup, present", 0, n,
           [&](std::uint64_t id) { return filter.might_contain(name(id), work); });
  time_ops("bloom lookup, absent", n, n,
           [&](std::uint64_t id) { return filter.might_contain(name(id), work); });
  time_ops("counting bloom add", 0, n, [&](std::uint64_t id) {
    counting.add(name(id), work);
    return 1;
  });
  time_ops("counting bloom lookup, absent", n, n,
           [&](std::uint64_t id) { return counting.might_contain(name(id), work); });
  time_ops("counting bloom remove", 0, n / 2, [&](std::uint64_t id) {
    counting.remove(name(id), work);
    return 1;
  });
  time_ops("exact set insert (grows from 16 slots)", 0, n,
           [&](std::uint64_t id) { return exact.insert(name(id), work); });
  time_ops("exact set lookup, present", 0, n,
           [&](std::uint64_t id) { return exact.contains(name(id), work); });
  time_ops("exact set lookup, absent", n, n,
           [&](std::uint64_t id) { return exact.contains(name(id), work); });
  std::printf("memory per name: bloom %.2f B, counting %.2f B, exact set %.2f B (%zu slots)\n",
              static_cast<double>(filter.memory_bytes()) / n,
              static_cast<double>(counting.memory_bytes()) / n,
              static_cast<double>(exact.memory_bytes()) / n, exact.capacity());

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "bloom_filter");
  Workload w;
  w.arrivals.rps = 7000;
  w.keys = KeyDistribution::uniform(1000000);
  w.write_share = 0.02;
  for (const char* v :
       {"db_lookup", "exact_set", "bloom", "bloom_clear_on_delete", "counting_bloom"})
    bench::run_lesson(lessons, "bloom_filter", v, {}, w, seconds(60));
  return 0;
}
