// Benchmark (not a test): cache requests per second per core for the caching lesson's policies
// at 1M objects, memory per cached entry, and the whole lesson through the simulation kernel.
// Prints a table; never asserts on time.
#include <time.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../plugins/caching/policies.hpp"
#include "hldlab/runtime/experiment.hpp"

using namespace hldlab;
using namespace hldlab::caching;

namespace {

/// CPU time of this thread: requests per second *per core*, unaffected by other processes
/// competing for the machine.
double now_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

/// Replay `trace` (insert on miss) and print requests/s, hit ratio and bytes per entry.
void run_policy(const char* name, Cache& cache, const std::vector<std::uint64_t>& trace,
                const char* workload) {
  for (std::size_t i = 0; i < trace.size() / 10; ++i) {  // warm up: fill the cache
    if (cache.access(trace[i]) == nullptr) {
      Evicted e;
      cache.insert(trace[i], e);
    }
  }
  std::uint64_t hits = 0;
  const double start = now_seconds();
  for (std::uint64_t key : trace) {
    if (cache.access(key) != nullptr) {
      ++hits;
    } else {
      Evicted e;
      cache.insert(key, e);
    }
  }
  const double elapsed = now_seconds() - start;
  std::printf("%-10s %-26s %9zu %10.2f M/s %7.1f ns %6.1f%% %8.1f B/entry\n", name, workload,
              cache.capacity(), static_cast<double>(trace.size()) / elapsed / 1e6,
              elapsed / static_cast<double>(trace.size()) * 1e9,
              100.0 * static_cast<double>(hits) / static_cast<double>(trace.size()),
              static_cast<double>(cache.memory_bytes()) / static_cast<double>(cache.capacity()));
}

std::vector<std::uint64_t> make_trace(const KeyDistribution& keys, std::size_t n,
                                      std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint64_t> trace(n);
  for (auto& k : trace) k = keys.sample(rng);
  return trace;
}

void bench_lesson(const PluginRegistry& registry, const std::string& variant) {
  ExperimentConfig config;
  config.duration = seconds(20);
  config.max_requests = 1e9;
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 200000;
  w.keys = KeyDistribution::zipf(1000000, 1.0);
  e.set_workload(w);
  e.add(registry, "caching", variant,
        {{"capacity", 100000}, {"cache_latency", 0}, {"db_median", "10us"}, {"db_p99", "20us"}});
  const double start = now_seconds();
  const auto r = e.run();
  const double elapsed = now_seconds() - start;
  std::printf(
      "caching/%-8s through the kernel (poisson, db events)    %10.2f M/s  %7.1f ns  hit %.1f%%\n",
      variant.c_str(), static_cast<double>(r.systems[0].completed) / elapsed / 1e6,
      elapsed / static_cast<double>(r.systems[0].completed) * 1e9, 100 * r.systems[0].hit_ratio);
}

}  // namespace

int main() {
  const std::size_t objects = 1000000, requests = 20000000;
  const auto zipf = make_trace(KeyDistribution::zipf(objects, 1.0), requests, 1);
  const auto uniform = make_trace(KeyDistribution::uniform(objects), requests, 2);
  std::printf("%-10s %-26s %9s %14s %10s %7s %14s\n", "policy", "workload (1M objects)", "capacity",
              "requests/s", "per req", "hit", "memory");
  for (const std::size_t capacity : {10000UL, 100000UL}) {
    for (const auto& [trace, label] : {std::pair{&zipf, "zipf(1.0), 20M requests"},
                                       std::pair{&uniform, "uniform, 20M requests"}}) {
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
  PluginRegistry lessons;
  lessons.load_directory(HLDLAB_BENCH_PLUGIN_DIR);
  if (lessons.has("caching")) {
    bench_lesson(lessons, "lru");
    bench_lesson(lessons, "wtinylfu");
  }
  return 0;
}
