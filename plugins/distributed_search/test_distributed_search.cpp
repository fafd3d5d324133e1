#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"
#include "index.hpp"

using namespace hldlab;
using namespace hldlab::testing;

TEST_CASE("the inverted index's top-k equals a full scan's for every query") {
  Rng rng(9);
  const auto corpus = search::generate(2000, 30, 1000, 1.0, rng);
  search::Shard whole(corpus, 0, 1);
  const auto pick = KeyDistribution::zipf(1000, 0.8);
  for (int q = 0; q < 200; ++q) {
    std::vector<std::uint32_t> query{static_cast<std::uint32_t>(pick.sample(rng))};
    const auto second = static_cast<std::uint32_t>(pick.sample(rng));
    if (second != query[0]) query.push_back(second);
    std::uint64_t words = 0, postings = 0;
    const auto scanned = search::scan(corpus, query, 10, words);
    const auto indexed = whole.search(query, 10, postings);
    CHECK(words == 2000 * 30);
    std::uint64_t expected_postings = 0;
    for (auto t : query) expected_postings += whole.postings(t);
    CHECK(postings == expected_postings);
    REQUIRE(scanned.size() == indexed.size());
    for (std::size_t i = 0; i < scanned.size(); ++i) {
      CHECK(scanned[i].doc == indexed[i].doc);
      CHECK(scanned[i].score == indexed[i].score);
    }
  }
}

TEST_CASE("the merge of the shards' top-k lists is exactly the global top-k, for any shard count") {
  Rng rng(4);
  const auto corpus = search::generate(3000, 30, 800, 1.0, rng);
  search::Shard whole(corpus, 0, 1);
  for (std::uint32_t shards : {2u, 3u, 8u, 31u}) {
    std::vector<std::unique_ptr<search::Shard>> parts;
    for (std::uint32_t s = 0; s < shards; ++s)
      parts.push_back(std::make_unique<search::Shard>(corpus, s, shards));
    for (std::uint32_t a = 0; a < 40; ++a) {
      const std::vector<std::uint32_t> query{a, a + 41};
      std::uint64_t read = 0, read_sharded = 0;
      const auto truth = whole.search(query, 10, read);
      std::vector<std::vector<search::Hit>> lists;
      for (auto& p : parts) lists.push_back(p->search(query, 10, read_sharded));
      const auto merged = search::merge(lists, 10);
      INFO(shards << " shards, query " << a);
      CHECK(read_sharded == read);  // the postings are split, not duplicated
      REQUIRE(merged.size() == truth.size());
      for (std::size_t i = 0; i < truth.size(); ++i) CHECK(merged[i].doc == truth[i].doc);
    }
  }
}

TEST_CASE(
    "with no slow shard a query takes rtt + postings x posting_ns, the scan rtt + words x "
    "scan_ns, a sharded one its largest shard") {
  // One query, no slowness: latencies are exact (to the nanosecond).
  const Map base{{"slow_share", 0.0}};
  std::vector<hldlab::testing::SystemSpec> systems{{"distributed_search", "scan", base},
                                                   {"distributed_search", "index", base}};
  Map postings;
  const auto r = hldlab::testing::run_experiment(
      hldlab::testing::constant_workload(1), milliseconds(1500), systems, 1, [&](Experiment& e) {
        postings = e.systems()[1]->call("query", Map{{"id", 0}}).as_map();
      });
  const double read = static_cast<double>(postings.at("postings").as_int());
  REQUIRE(row(r, "index").requests == 1);
  CHECK(figure(row(r, "index"), "postings_per_query") == read);
  CHECK(row(r, "index").max == Approx(1e-3 + read * 100e-9).epsilon(0.01));
  CHECK(row(r, "scan").max == Approx(1e-3 + 5000 * 40 * 20e-9).epsilon(0.01));
  CHECK(figure(row(r, "scan"), "words_per_query") == 200000);
}

TEST_CASE("the share of slow queries grows as 1 - (1 - p)^shards; hedging makes it ~ p^2") {
  // p = 1 %: 4 shards 3.9 %, 16 shards 14.9 % of 4000 queries (sd 0.3 % and 0.6 %).
  const Map p4{{"shards", 4}, {"slow_share", 0.01}, {"docs", 500}};
  const Map p16{{"shards", 16}, {"slow_share", 0.01}, {"docs", 500}};
  const auto r =
      hldlab::testing::run_experiment(hldlab::testing::poisson_workload(400), seconds(10),
                                      {{"distributed_search", "sharded", p4, "s4"},
                                       {"distributed_search", "sharded", p16, "s16"},
                                       {"distributed_search", "sharded_hedged", p16, "h16"}});
  // A query is slow (over 50 ms) iff one of its shard requests was: the quantiles tell on which
  // side of 10 % and 1 % the share of slow queries is.
  CHECK(row(r, "s4").p90 < 0.02);   // 3.9 % slow: the P90 is fast
  CHECK(row(r, "s4").p99 > 0.05);   // but the P99 is slow
  CHECK(row(r, "s16").p90 > 0.05);  // 14.9 % slow: even the P90
  CHECK(row(r, "h16").p99 < 0.02);  // hedged: 16 x 1e-4 = 0.16 % slow
  CHECK(figure(row(r, "h16"), "hedges") ==
        Approx(0.01 * 16 * figure(row(r, "h16"), "queries")).epsilon(0.15));
}

TEST_CASE(
    "a timeout drops the slow shards: partial answers, each missing about 1/shards of the top-k") {
  const Map params{{"shards", 8}, {"slow_share", 0.05}, {"timeout", "20ms"}};
  const auto r = hldlab::testing::run_experiment(hldlab::testing::poisson_workload(200), seconds(5),
                                                 {{"distributed_search", "sharded", params}});
  const auto& s = row(r, "sharded");
  const double q = figure(s, "queries");
  const double partial = figure(s, "partial_answers");
  // 1 - 0.95^8 = 33.7 % of the queries lose at least one shard; 0.05 x 8 = 0.4 shards per query
  // are lost on average, each with ~1/8 of the top 10: recall ~ 1 - 0.05 = 0.95.
  CHECK(partial / q == Approx(1 - std::pow(0.95, 8)).margin(0.05));
  CHECK(figure(s, "recall") == Approx(0.95).margin(0.02));
  CHECK(s.max <= 0.02 + 1e-9);
}

TEST_CASE("the script's claims hold") {
  const ScriptResult r = hldlab::testing::run_script_file("distributed_search.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
