// Benchmark (not a test): the semantic_cache lesson's structures and simulation speed. Lookups
// per second of the brute-force semantic cache (cosine against every entry) at 1000 and 10 000
// entries of dimension 64 and 384, embeddings per second of the synthetic prompt space, then
// simulated requests per second of each variant alone (5 minutes at 100 requests/s). Prints a
// table; never asserts on time.
#include <cstdio>
#include <vector>

#include "../plugins/semantic_cache/semantic.hpp"
#include "bench_support.hpp"

using namespace hldlab;

namespace {

volatile double sink;  // keeps the lookups from being optimised away

void bench_cache(int dim, std::size_t entries) {
  semantic::PromptSpace space(dim, 4, 0.9, 0.92, 0.6, 0.3, 42);
  semantic::SemanticCache cache(dim, entries);
  std::vector<float> v(static_cast<std::size_t>(dim));
  double start = bench::now_seconds();
  for (std::size_t i = 0; i < entries; ++i) {
    space.embed(i, 0, v.data());
    cache.insert(v.data(), {i, 0});
  }
  bench::report("embed + insert, dim " + std::to_string(dim), static_cast<double>(entries),
                bench::now_seconds() - start, "entries");
  const int lookups = entries > 5000 ? 2000 : 20000;
  double acc = 0;
  start = bench::now_seconds();
  for (int i = 0; i < lookups; ++i) {
    space.embed(static_cast<std::uint64_t>(i) % entries, 1, v.data());
    acc += cache.nearest(v.data()).similarity;
  }
  sink = acc;
  bench::report("lookup, " + std::to_string(entries) + " entries of dim " + std::to_string(dim),
                lookups, bench::now_seconds() - start, "lookups");
}

}  // namespace

int main() {
  for (int dim : {64, 384})
    for (std::size_t entries : {std::size_t{1000}, std::size_t{10000}}) bench_cache(dim, entries);

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "semantic_cache");
  Workload w;
  w.arrivals.rps = 100;
  w.keys = KeyDistribution::zipf(1000, 1.0);
  w.service = Distribution::lognormal(1e9, 4e9);
  for (const char* v : {"exact_match", "semantic", "semantic_length_aware", "semantic_verified"}) {
    const ExperimentResult r = bench::run_lesson(lessons, "semantic_cache", v, {}, w, seconds(300));
    const Map& f = r.systems[0].figures;
    std::printf("    hit rate %.3f, false-hit rate %.4f, net saving $%.0f\n",
                f.at("hit_rate").as_double(), f.at("false_hit_rate").as_double(),
                f.at("net_saving").as_double());
  }
  return 0;
}
