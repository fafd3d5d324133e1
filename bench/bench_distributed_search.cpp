// Benchmark (not a test): query throughput of the distributed_search lesson's real index on a
// corpus of 100 000 documents of 40 words (a full scan for comparison, on 100 queries), then
// simulated queries per second through the lesson, each variant alone (200 queries/s for 60 s,
// default corpus, 32 shards). Prints a table; never asserts on time.
#include <cstdio>
#include <memory>

#include "../plugins/distributed_search/index.hpp"
#include "bench_support.hpp"

using namespace hldlab;

int main() {
  Rng rng(1);
  double start = bench::now_seconds();
  const auto corpus = search::generate(100000, 40, 50000, 1.0, rng);
  search::Shard index(corpus, 0, 1);
  bench::report("build corpus + index (100k docs x 40 words)", 4e6, bench::now_seconds() - start,
                "words");
  const auto pick = KeyDistribution::zipf(50000, 0.8);
  std::uint64_t words = 0, postings = 0;
  start = bench::now_seconds();
  for (int q = 0; q < 100; ++q)
    search::scan(corpus, {static_cast<std::uint32_t>(pick.sample(rng))}, 10, words);
  bench::report("scan queries", 100, bench::now_seconds() - start, "queries");
  start = bench::now_seconds();
  for (int q = 0; q < 20000; ++q)
    index.search({static_cast<std::uint32_t>(pick.sample(rng))}, 10, postings);
  bench::report("index queries", 20000, bench::now_seconds() - start, "queries");
  std::printf("  postings per index query %.0f, words per scan %.0f\n", postings / 2e4,
              words / 1e2);

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "distributed_search");
  Workload w;
  w.arrivals.rps = 200;
  for (const char* v : {"scan", "index", "sharded", "sharded_hedged"})
    bench::run_lesson(lessons, "distributed_search", v, {{"shards", 32}}, w, seconds(60));
  return 0;
}
