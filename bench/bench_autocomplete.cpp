// Benchmark (not a test): the autocomplete lesson's structures on this machine: prefix queries
// per second for the prefix scan, the plain trie and the trie with cached top-10, updates per
// second (a count, or a count and the lists on the term's path), and a full rebuild of the
// lists, at 20 000 and 200 000 terms; then the lesson itself (requests per second of wall
// time). Prints figures; never asserts on time.
#include <cstdio>
#include <string_view>
#include <vector>

#include "../plugins/autocomplete/trie.hpp"
#include "bench_support.hpp"

using namespace hldlab;
using namespace hldlab::typeahead;

namespace {

volatile std::size_t sink;

void bench_structures(std::size_t n) {
  Rng rng(7);
  double start = bench::now_seconds();
  Terms terms = syllable_dictionary(n, 1e6, 1.0, rng);
  const SortedList list(terms);
  Trie plain(terms, 0), cached(terms, 10);
  std::printf(
      "-- %zu terms: built in %.3f s; %zu trie nodes; bytes per term: list %.0f, "
      "trie %.0f, trie + top-10 %.0f\n",
      n, bench::now_seconds() - start, cached.nodes(),
      static_cast<double>(terms.bytes() + list.bytes()) / n,
      static_cast<double>(terms.bytes() + plain.bytes()) / n,
      static_cast<double>(terms.bytes() + cached.bytes()) / n);
  // Prefixes as the lesson types them: a Zipf-popular term, its first 1..length characters.
  const KeyDistribution popularity = KeyDistribution::zipf(n, 1.0);
  std::vector<std::string_view> prefixes;
  for (int i = 0; i < 200000; ++i) {
    const std::string& t = terms.text(static_cast<TermId>(popularity.sample(rng)));
    prefixes.push_back(std::string_view(t).substr(0, 1 + rng.below(t.size())));
  }
  TopK best(10);
  std::vector<TermId> out;
  std::size_t total = 0;
  Work w;
  auto queries = [&](const char* name, std::size_t count, auto query) {
    w = {};
    const double t0 = bench::now_seconds();
    for (std::size_t i = 0; i < count; ++i) query(prefixes[i % prefixes.size()]);
    bench::report(name, static_cast<double>(count), bench::now_seconds() - t0, "queries");
    std::printf("   %.1f nodes or rows, %.1f comparisons per query\n",
                static_cast<double>(w.nodes) / count, static_cast<double>(w.comparisons) / count);
  };
  const std::size_t slow = n > 50000 ? 20000 : 100000;
  queries("prefix_scan", slow, [&](std::string_view p) {
    std::int64_t matches = 0;
    list.complete(p, terms.counts(), best, w, matches);
    total += best.best().size();
  });
  queries("trie (walk the subtree)", slow, [&](std::string_view p) {
    plain.complete_by_walk(p, terms.counts(), best, w);
    total += best.best().size();
  });
  queries("trie_topk (cached lists)", 2000000, [&](std::string_view p) {
    cached.complete_cached(p, out, w);
    total += out.size();
  });

  const std::size_t updates = 2000000;
  w = {};
  start = bench::now_seconds();
  for (std::size_t i = 0; i < updates; ++i) {
    const auto t = static_cast<TermId>(popularity.sample(rng));
    terms.add(t, 1);
    cached.raised(t, terms.counts(), w);
  }
  bench::report("trie_topk updates (count + lists on the path)", static_cast<double>(updates),
                bench::now_seconds() - start, "updates");
  std::printf("   %.1f nodes, %.1f comparisons per update\n",
              static_cast<double>(w.nodes) / updates, static_cast<double>(w.comparisons) / updates);
  start = bench::now_seconds();
  for (std::size_t i = 0; i < updates; ++i)
    terms.add(static_cast<TermId>(popularity.sample(rng)), 1);
  bench::report("trie_topk_batch updates (a count)", static_cast<double>(updates),
                bench::now_seconds() - start, "updates");
  start = bench::now_seconds();
  const Work rebuild = cached.rebuild(terms.counts());
  bench::report("trie_topk_batch rebuild of every list", static_cast<double>(cached.nodes()),
                bench::now_seconds() - start, "nodes");
  std::printf("   %.1f comparisons per node\n",
              static_cast<double>(rebuild.comparisons) / static_cast<double>(rebuild.nodes));
  sink = total;
}

}  // namespace

int main() {
  bench_structures(20000);
  bench_structures(200000);

  std::printf("-- the lesson (20 000 terms, Zipf 1, 30%% counted searches)\n");
  const PluginRegistry registry = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  Workload w;
  w.arrivals.rps = 200000;
  w.keys = KeyDistribution::zipf(20000, 1.0);
  w.write_share = 0.3;
  for (const char* v : {"prefix_scan", "trie", "trie_topk", "trie_topk_batch"})
    bench::run_lesson(registry, "autocomplete", v, {}, w, seconds(1));
  return 0;
}
