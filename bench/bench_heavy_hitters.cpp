// Benchmark (not a test): operations per second of the heavy_hitters lesson's structures on a
// Zipf(1) stream over a million topics (count-min updates, standard and conservative, with the
// top-10 heap; the exact map and its top-10 scan), and simulated events per second through the
// lesson, each variant alone. Prints a table; never asserts on time.
#include <cstdio>
#include <vector>

#include "../plugins/heavy_hitters/sketch.hpp"
#include "bench_support.hpp"
#include "hldlab/distribution.hpp"

using namespace hldlab;

namespace {

volatile double sink;  // keeps the results from being optimised away

}  // namespace

int main() {
  const std::size_t events = 5000000;
  const KeyDistribution zipf = KeyDistribution::zipf(1000000, 1.0);
  Rng rng(1);
  std::vector<std::uint64_t> stream(events);
  for (auto& topic : stream) topic = Rng::hash(zipf.sample(rng)) >> 1;
  sketch::Work work;

  for (bool conservative : {false, true}) {
    Rng hashes(7);
    sketch::CountMin<std::uint32_t> cms(2719, 5, hashes);
    sketch::TopK top(10);
    const double start = bench::now_seconds();
    for (std::uint64_t topic : stream)
      top.offer(topic, cms.add(topic, 1, conservative, work), work);
    bench::report(conservative ? "count-min (2719 x 5) conservative + top-10 heap, per event"
                               : "count-min (2719 x 5) + top-10 heap, per event",
                  static_cast<double>(events), bench::now_seconds() - start, "events");
    std::vector<sketch::Counted> answer;
    const int queries = 1000000;
    const double q = bench::now_seconds();
    for (int i = 0; i < queries; ++i) top.sorted(answer, work);
    bench::report("  top-10 query (sort the heap)", queries, bench::now_seconds() - q, "queries");
    sink = answer.front().count;
  }

  sketch::ExactCounts exact;
  double start = bench::now_seconds();
  for (std::uint64_t topic : stream) exact.add(topic, 1, work);
  bench::report("exact map, per event", static_cast<double>(events), bench::now_seconds() - start,
                "events");
  std::vector<sketch::Counted> answer;
  const int queries = 100;
  start = bench::now_seconds();
  for (int i = 0; i < queries; ++i) exact.top(10, answer, work);
  bench::report("  top-10 query (scan every slot)", queries, bench::now_seconds() - start,
                "queries");
  std::printf(
      "memory: count-min 2719 x 5 %zu B; exact map %.1f MiB for %zu topics (%.1f B a topic)\n",
      std::size_t{2719} * 5 * 4, static_cast<double>(exact.memory_bytes()) / (1 << 20),
      exact.size(), static_cast<double>(exact.memory_bytes()) / static_cast<double>(exact.size()));

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "heavy_hitters");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::zipf(1000000, 1.0);
  w.write_share = 0.99;
  for (const char* v : {"exact_counts", "count_min", "count_min_cu", "count_min_decayed"})
    bench::run_lesson(lessons, "heavy_hitters", v, {{"half_life", "1s"}}, w, seconds(30));
  return 0;
}
