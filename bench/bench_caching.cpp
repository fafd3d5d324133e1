// Benchmark (not a test): cache requests per second per core for the caching lesson's policies
// at 1M objects, memory per cached entry, and the whole lesson through the simulation kernel.
// Prints a table; never asserts on time.
#include <time.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../plugins/caching/policies.hpp"
#include "bench_support.hpp"

using namespace hldlab;
using namespace hldlab::caching;

namespace {

/// CPU time of this thread: requests per second *per core*, unaffected by other processes
/// competing for the machine.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

/// One request for `key`: true on a hit, else the key is inserted.
bool request(Cache& cache, std::uint64_t key) {
  if (cache.access(key) != nullptr) return true;
  Evicted e;
  cache.insert(key, e);
  return false;
}

/// Replay `trace` after warming the cache with its first tenth; report requests/s, the hit
/// ratio and bytes per entry.
void run_policy(const char* name, Cache& cache, const std::vector<std::uint64_t>& trace,
                const char* workload) {
  for (std::size_t i = 0; i < trace.size() / 10; ++i) request(cache, trace[i]);
  std::uint64_t hits = 0;
  const double start = cpu_seconds();
  for (std::uint64_t key : trace) hits += request(cache, key);
  const double elapsed = cpu_seconds() - start;
  char label[128];
  std::snprintf(label, sizeof label, "%-8s %-7s capacity %6zu: hit %4.1f%%, %5.1f B/entry", name,
                workload, cache.capacity(),
                100.0 * static_cast<double>(hits) / static_cast<double>(trace.size()),
                static_cast<double>(cache.memory_bytes()) / static_cast<double>(cache.capacity()));
  bench::report(label, static_cast<double>(trace.size()), elapsed, "requests");
}

std::vector<std::uint64_t> make_trace(const KeyDistribution& keys, std::size_t n,
                                      std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint64_t> trace(n);
  for (auto& k : trace) k = keys.sample(rng);
  return trace;
}

}  // namespace

int main() {
  const std::size_t objects = 1000000, requests = 20000000;
  const auto zipf = make_trace(KeyDistribution::zipf(objects, 1.0), requests, 1);
  const auto uniform = make_trace(KeyDistribution::uniform(objects), requests, 2);
  std::printf("policies on 1M objects, 20M requests (CPU time of one thread)\n");
  for (const std::size_t capacity : {10000UL, 100000UL}) {
    for (const auto& [trace, label] :
         {std::pair{&zipf, "zipf1.0"}, std::pair{&uniform, "uniform"}}) {
      ListCache lru(capacity, true);
      run_policy("lru", lru, *trace, label);
      WTinyLfuCache tiny(capacity);
      run_policy("wtinylfu", tiny, *trace, label);
      ListCache fifo(capacity, false);
      run_policy("fifo", fifo, *trace, label);
      LfuCache lfu(capacity);
      run_policy("lfu", lfu, *trace, label);
    }
  }
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  if (lessons.has("caching")) {
    std::printf(
        "the lesson through the kernel: poisson 200k rps, zipf(1M, 1.0), database events\n");
    Workload w;
    w.arrivals.rps = 200000;
    w.keys = KeyDistribution::zipf(1000000, 1.0);
    for (const char* v : {"lru", "wtinylfu"})
      bench::run_lesson(
          lessons, "caching", v,
          {{"capacity", 100000}, {"cache_latency", 0}, {"db_median", "10us"}, {"db_p99", "20us"}},
          w, seconds(20));
  }
  return 0;
}
