#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "hldlab_test.hpp"
#include "trie.hpp"

using namespace hldlab;
using namespace hldlab::typeahead;
using namespace hldlab::testing;

namespace {

//                 0      1       2       3      4      5     6      7
Terms small() {
  return Terms({"car", "cart", "care", "cat", "dog", "do", "c", "cattle"},
               {50, 10, 30, 40, 20, 60, 5, 1});
}

std::vector<std::string> texts(const Terms& terms, const std::vector<TermId>& ids) {
  std::vector<std::string> out;
  for (TermId t : ids) out.push_back(terms.text(t));
  return out;
}

/// Every prefix of every term.
std::vector<std::string> prefixes(const Terms& terms) {
  std::vector<std::string> out;
  for (TermId t = 0; t < terms.size(); ++t)
    for (std::size_t n = 1; n <= terms.text(t).size(); ++n)
      out.push_back(terms.text(t).substr(0, n));
  return out;
}

/// A random dictionary of `n` words over a 4-letter alphabet (long shared prefixes).
Terms random_terms(std::size_t n, std::mt19937& random) {
  std::vector<std::string> words;
  std::vector<std::int64_t> counts;
  std::uniform_int_distribution<int> letter(0, 3), length(1, 8), count(0, 50);
  std::set<std::string> seen;
  while (words.size() < n) {
    std::string w;
    for (int i = length(random); i > 0; --i) w += static_cast<char>('a' + letter(random));
    if (seen.insert(w).second) words.push_back(w), counts.push_back(count(random));
  }
  return Terms(words, counts);
}

/// One autocomplete system, alone.
struct Ac {
  explicit Ac(const std::string& variant, const Map& params = {}, std::uint64_t seed = 1)
      : e(config(seed)), s(e.add(registry(), "autocomplete", variant, params)) {}
  static ExperimentConfig config(std::uint64_t seed) {
    ExperimentConfig c;
    c.seed = seed;
    return c;
  }
  Value complete(const std::string& prefix) { return s.call("complete", {{"prefix", prefix}}); }
  Experiment e;
  SystemSlot& s;
};

const char* const kVariants[] = {"prefix_scan", "trie", "trie_topk", "trie_topk_batch"};

}  // namespace

TEST_CASE("a trie query with cached top-k visits exactly prefix-length nodes") {
  const Terms terms = small();
  Trie trie(terms, 3);
  for (const std::string& p : prefixes(terms)) {
    Work w;
    std::vector<TermId> out;
    trie.complete_cached(p, out, w);
    INFO(p);
    CHECK(w.nodes == static_cast<std::int64_t>(p.size()));
    CHECK_FALSE(out.empty());
  }
  Work w;
  std::vector<TermId> out;
  trie.complete_cached("ca", out, w);
  CHECK(texts(terms, out) == std::vector<std::string>{"car", "cat", "care"});  // 50, 40, 30
  trie.complete_cached("d", out, w);
  CHECK(texts(terms, out) == std::vector<std::string>{"do", "dog"});
  trie.complete_cached("x", out, w);  // nothing starts with x
  CHECK(out.empty());
}

TEST_CASE("the prefix scan reads every matching term and one more; the plain trie its subtree") {
  const Terms terms = small();
  const SortedList list(terms);
  Trie trie(terms, 0);
  TopK best(3);
  struct Case {
    const char* prefix;
    std::int64_t matches, scan_rows, trie_nodes;
  };
  // Sorted: c car care cart cat cattle do dog. "ca": car care cart cat cattle, then "do" ends it.
  // The trie below "ca": r (car) -> e (care), t (cart); t (cat) -> t -> l -> e (cattle).
  for (const Case& c : {Case{"ca", 5, 6, 2 + 7}, Case{"c", 6, 7, 1 + 8}, Case{"d", 2, 2, 1 + 2},
                        Case{"cat", 2, 3, 3 + 3}}) {
    Work scan, walk;
    std::int64_t matches = 0;
    list.complete(c.prefix, terms.counts(), best, scan, matches);
    INFO(c.prefix);
    CHECK(matches == c.matches);
    CHECK(scan.nodes == c.scan_rows);  // "d": the range ends at the end of the list
    const auto expected = best.best();
    trie.complete_by_walk(c.prefix, terms.counts(), best, walk);
    CHECK(walk.nodes == c.trie_nodes);
    CHECK(best.best() == expected);
  }
}

TEST_CASE("cached lists stay exact while counts grow, and a rebuild recomputes them") {
  std::mt19937 random(3);
  const Terms start = random_terms(400, random);
  Terms live = start;
  const SortedList list(live);
  Trie fresh(live, 5), batch(live, 5);
  const auto all = prefixes(live);
  std::uniform_int_distribution<TermId> pick(0, 399);
  TopK truth(5);
  std::vector<TermId> answer;
  std::int64_t stale = 0;
  for (int step = 0; step < 3000; ++step) {
    const TermId t = pick(random) % 40;  // a few terms climb the ranks
    live.add(t, 1);
    Work w;
    fresh.raised(t, live.counts(), w);
    CHECK(w.nodes == static_cast<std::int64_t>(live.text(t).size()) + 1);  // its path and the root
    if (step % 100 != 0) continue;
    for (const std::string& p : all) {
      std::int64_t matches = 0;
      Work unused;
      list.complete(p, live.counts(), truth, unused, matches);
      fresh.complete_cached(p, answer, unused);
      REQUIRE(answer == truth.best());
      batch.complete_cached(p, answer, unused);
      stale += answer != truth.best();
    }
  }
  CHECK(stale > 0);  // the batch lists fell behind
  batch.rebuild(live.counts());
  for (const std::string& p : all) {
    std::int64_t matches = 0;
    Work unused;
    list.complete(p, live.counts(), truth, unused, matches);
    batch.complete_cached(p, answer, unused);
    CHECK(answer == truth.best());
  }
}

TEST_CASE("every variant answers every prefix of the lesson's dictionary the same way") {
  std::vector<std::unique_ptr<Ac>> systems;
  for (const char* v : kVariants) systems.push_back(std::make_unique<Ac>(v, Map{{"terms", 3000}}));
  for (std::int64_t rank = 0; rank < 300; rank += 7) {
    const std::string term = systems[0]->s.call("term", {{"rank", rank}})["term"].as_string();
    for (std::size_t n = 1; n <= term.size(); ++n) {
      const std::string prefix = term.substr(0, n);
      const Value first = systems[0]->complete(prefix);
      for (auto& ac : systems) {
        const Value got = ac->complete(prefix);
        INFO(ac->s.variant() << " '" << prefix << "'");
        CHECK(got["terms"] == first["terms"]);
        CHECK(got["matches"] == first["matches"]);
        CHECK_FALSE(got["stale"].as_bool());
        if (ac->s.variant() == "trie_topk" || ac->s.variant() == "trie_topk_batch")
          CHECK(got["nodes"].as_int() == static_cast<std::int64_t>(n));
        if (ac->s.variant() == "prefix_scan")
          CHECK(got["nodes"].as_int() >= got["matches"].as_int());
      }
    }
  }
}

TEST_CASE("under a trend the in-place lists stay exact and the batch lists go stale") {
  // 30% of the requests are completed searches (count + 1); from 0.5 s a tenth of all
  // requests is about the term of rank 10 000, which climbs into the top-10 of its prefixes.
  Workload w = hldlab::testing::poisson_workload(5000, 0, 1);
  w.keys = KeyDistribution::zipf(20000, 1.0);
  w.write_share = 0.3;
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants)
    systems.push_back({"autocomplete", v, {{"rebuild_period", "1s"}}});
  const auto r = hldlab::testing::run_experiment(w, seconds(2), systems, 1, [](Experiment& e) {
    hldlab::testing::inject_everywhere(e, milliseconds(500), "trend",
                                       {{"rank", 10000}, {"share", 0.1}});
  });
  for (const char* v : {"prefix_scan", "trie", "trie_topk"}) {
    INFO(v);
    CHECK(figure(r, v, "stale_share") == 0);
    CHECK(figure(r, v, "trend_stale") == 0);
  }
  CHECK(figure(r, "trie_topk_batch", "stale_share") > 0);
  CHECK(figure(r, "trie_topk_batch", "trend_stale") > 0);
  CHECK(figure(r, "trie_topk_batch", "rebuilds") == 1);
  // The same queries everywhere; the cached variants visit the typed characters only.
  const double matches = figure(r, "prefix_scan", "matches_per_query");
  for (const char* v : kVariants) CHECK(figure(r, v, "matches_per_query") == matches);
  CHECK(figure(r, "trie_topk", "nodes_per_query") ==
        figure(r, "trie_topk_batch", "nodes_per_query"));
  CHECK(figure(r, "trie_topk", "nodes_per_query") < 8);
  CHECK(figure(r, "prefix_scan", "nodes_per_query") >
        20 * figure(r, "trie_topk", "nodes_per_query"));
  CHECK(figure(r, "trie", "nodes_per_query") > figure(r, "prefix_scan", "nodes_per_query"));
  // Updates: one count, plus the term's path (length + 1 nodes) when the lists are live.
  CHECK(figure(r, "trie_topk_batch", "nodes_per_update") == 1);
  CHECK(figure(r, "trie_topk", "nodes_per_update") > 4);
  CHECK(figure(r, "trie_topk", "bytes_per_term") > 5 * figure(r, "prefix_scan", "bytes_per_term"));
}

TEST_CASE("a request's time is the overhead plus its nodes and comparisons at the stated costs") {
  // One request per second: nobody queues, the latency is the service time.
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"autocomplete", v});
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(1, 0, 20000),
                                                 seconds(30), systems);
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    const double per_query =
        1e-6 + figure(s, "nodes_per_query") * 50e-9 + figure(s, "comparisons_per_query") * 5e-9;
    CHECK(s.mean == Approx(per_query).epsilon(1e-9));
  }
}

TEST_CASE("the prefix scan's work grows with the dictionary, the cached trie's does not") {
  // The first n terms of a dictionary of 10 n are the same words (the same stream), and the
  // traffic types the same prefixes of them: the scan reads ~10x the matches (every extra
  // term is drawn alike), the cached trie visits exactly the same nodes. Over 10 seeds the
  // ratio stays within 20% of 10.
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Workload w = hldlab::testing::poisson_workload(2000, 0, 1);
    w.keys = KeyDistribution::zipf(2000, 1.0);
    std::vector<hldlab::testing::SystemSpec> systems;
    for (std::int64_t n : {2000, 20000})
      for (const char* v : {"prefix_scan", "trie_topk"})
        systems.push_back({"autocomplete", v, {{"terms", n}}, v + std::to_string(n)});
    const auto r = hldlab::testing::run_experiment(w, seconds(1), systems, seed);
    INFO("seed " << seed);
    CHECK(figure(r, "trie_topk2000", "nodes_per_query") ==
          figure(r, "trie_topk20000", "nodes_per_query"));
    const double ratio = figure(r, "prefix_scan20000", "matches_per_query") /
                         figure(r, "prefix_scan2000", "matches_per_query");
    CHECK(ratio > 8);
    CHECK(ratio < 12);
  }
}
