#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

Workload reads(double rps, const KeyDistribution& keys) {
  Workload w;
  w.arrivals.rps = rps;
  w.keys = keys;
  return w;
}

/// `variants` with `params`, each warmed with keys [0, warm) before the run.
ExperimentResult run_warmed(const Workload& w, Time duration,
                            std::initializer_list<const char*> variants, const Map& params,
                            std::int64_t warm, std::uint64_t seed,
                            const std::function<void(Experiment&)>& setup = {}) {
  std::vector<SystemSpec> systems;
  for (const char* v : variants) systems.push_back({"cache_problems", v, params});
  return run_experiment(w, duration, systems, seed, [&](Experiment& e) {
    for (const auto& s : e.systems()) s->call("warm", {{"keys", warm}});
    if (setup) setup(e);
  });
}

/// Reloads of a key that expired: queries that were not duplicates.
double loads(const ExperimentResult& r, const std::string& label) {
  return figure(r, label, "db_queries") - figure(r, label, "dup_loads");
}

}  // namespace

TEST_CASE("one hot key: each expiry costs the naive cache a query per read until the reload") {
  // Every read (10 000/s) asks for key 0, cached at 0 with a 5 s TTL; a load takes exactly
  // 50 ms and the database never queues.
  const Map params{{"ttl", "5s"}, {"db_median", "50ms"}, {"db_p99", "50ms"}, {"db_workers", 10000}};
  const auto r =
      run_warmed(reads(10000, KeyDistribution::uniform(1)), seconds(300),
                 {"naive", "single_flight", "early_expiry", "background_refresh"}, params, 1, 21);
  // Naive: the reads arriving during the first load's 50 ms each query too: about
  // 10 000/s * 50 ms = 500 per expiry (Poisson) after the first.
  const double naive_per_expiry = figure(r, "naive", "dup_loads") / loads(r, "naive");
  INFO("naive duplicates per expiry " << naive_per_expiry);
  CHECK(std::abs(naive_per_expiry - 500) < 15);  // 5 standard deviations over ~58 expiries
  CHECK(figure(r, "naive", "peak_db_qps") > 4000);
  // Single flight: one query per expiry. The key is fresh again 50 ms after it expired:
  // expiries at 5 s, 10.05 s, ..., 5 + 58 * 5.05 = 297.9 s: 59 queries, and every read that
  // found the key expired waited for one of them.
  REQUIRE(figure(r, "single_flight", "db_queries") == 59);
  REQUIRE(figure(r, "single_flight", "dup_loads") == 0);
  REQUIRE(figure(r, "single_flight", "peak_db_qps") == 10);  // one query per 100 ms window
  CHECK(figure(r, "single_flight", "expired_reads") > 59 * 400);
  // Background refresh: reloads at 80% of the TTL after each load ends, at 4 s, 8.05 s, ...,
  // 4 + 73 * 4.05 = 299.65 s: 74 queries, and no reader ever finds the key expired.
  REQUIRE(figure(r, "background_refresh", "db_queries") == 74);
  REQUIRE(figure(r, "background_refresh", "expired_reads") == 0);
  REQUIRE(figure(r, "background_refresh", "dup_loads") == 0);
  for (const char* v : {"naive", "single_flight", "early_expiry", "background_refresh"}) {
    INFO(v);
    CHECK(row(r, v).completed == row(r, v).requests);  // every waiter on a shared load answered
  }
}

TEST_CASE("XFetch at beta 1 recomputes about e - 1 extra times per expiry, as theory says") {
  // A read at time u before the expiry recomputes with probability exp(-u / delta). The first
  // recomputation starts when the accumulated intensity (lambda delta exp(-u / delta)) reaches
  // an Exp(1) draw E; during its load (delta long) the reads add E (e - 1) more on average.
  // Per expiry: mean e - 1 = 1.72, variance (e - 1) + (e - 1)^2 = 4.67.
  const Map params{{"ttl", "5s"}, {"db_median", "50ms"}, {"db_p99", "50ms"}, {"db_workers", 10000}};
  const auto r = run_warmed(reads(10000, KeyDistribution::uniform(1)), seconds(300),
                            {"early_expiry"}, params, 1, 22);
  const double expiries = loads(r, "early_expiry");
  const double per_expiry = figure(r, "early_expiry", "dup_loads") / expiries;
  INFO(expiries << " expiries, " << per_expiry << " extra recomputations each");
  // About 63 expiries (one every 5 s - 6 delta): 3 standard deviations are 3 sqrt(4.67/63).
  CHECK(expiries > 55);
  CHECK(std::abs(per_expiry - (std::exp(1.0) - 1)) < 3 * std::sqrt(4.67 / expiries));
  CHECK(figure(r, "early_expiry", "expired_reads") == 0);
}

TEST_CASE("a Bloom filter lets absent keys through at the false-positive rate theory predicts") {
  const auto r =
      run_experiment(reads(2000, KeyDistribution::uniform(10000)), seconds(50),
                     {{"cache_problems",
                       "bloom_filter",
                       {{"existing_keys", 10000}, {"bloom_bits_per_key", 10.0}}}},
                     2, [](Experiment& e) {
                       SystemSlot& s = *e.systems()[0];
                       e.at(0, [&s] { s.inject("penetration_attack", {{"share", 1.0}}); });
                     });
  // Every request asks for a fresh absent id: the filter stops all but its false positives,
  // which reach the database (and answer without a hit).
  const double k = std::round(10 * std::log(2.0));
  const double theory = std::pow(1 - std::exp(-k / 10), k);
  const auto& bloom = row(r, "bloom_filter");
  const double queried = figure(bloom, "absent_db");
  REQUIRE(queried == static_cast<double>(bloom.count(Outcome::miss)));
  const double measured = queried / static_cast<double>(bloom.requests);
  INFO("measured FPR " << measured << ", theory " << theory);
  // About 820 false positives in 100 000: 15% is more than 4 standard deviations.
  CHECK(std::abs(measured - theory) < 0.15 * theory);
}

TEST_CASE("null caching queries each absent key once per null TTL, naive on every request") {
  std::vector<SystemSpec> systems;
  for (const char* v : {"naive", "null_cache"})
    systems.push_back({"cache_problems", v, {{"existing_keys", 1000}, {"null_ttl", "60s"}}});
  const auto r =
      run_experiment(reads(1000, KeyDistribution::uniform(2000)), seconds(20), systems, 3);
  // Keys 1000..1999 do not exist. With a null TTL longer than the run each is loaded once,
  // plus the loads that raced with its first one (counted as duplicates); each is asked for
  // about 10 times, so all but a few of them at least once.
  const double absent = figure(r, "null_cache", "absent_db");
  CHECK(absent - figure(r, "null_cache", "dup_loads") <= 1000);
  CHECK(absent >= 990);
  // Naive: about half of the 20 000 requests are for absent keys, and each is a query.
  CHECK(figure(r, "naive", "absent_db") > 9000);
}

TEST_CASE("a celebrity key saturates its cache node; local L1 caches take the load off it") {
  const auto r =
      run_warmed(reads(60000, KeyDistribution::hotspot(100000, 1e-5, 0.5)), seconds(5),
                 {"naive", "local_l1"}, {{"ttl", "60s"}, {"node_service", "40us"}}, 100000, 4);
  // Hot node: 30k reads/s of the key plus 1/8 of the rest, at 25k lookups/s.
  CHECK(figure(r, "naive", "hot_node_util") > 0.99);
  CHECK(row(r, "naive").count(Outcome::rejected) > 1000);
  // With L1: 20 app servers reload it about once per l1_ttl (1 s, jittered) each.
  CHECK(figure(r, "local_l1", "hot_node_util") < 0.3);
  CHECK(row(r, "local_l1").count(Outcome::rejected) == 0);
  CHECK(row(r, "local_l1").p99 < row(r, "naive").p99 / 10);
}

TEST_CASE("keys warmed together with one TTL expire together; a jittered TTL spreads the load") {
  const auto r = run_warmed(reads(5000, KeyDistribution::uniform(5000)), seconds(30),
                            {"naive", "jittered_ttl"},
                            {{"ttl", "10s"}, {"jitter", 0.3}, {"db_workers", 64}}, 5000, 5);
  INFO("peak naive " << figure(r, "naive", "peak_db_qps") << " jittered "
                     << figure(r, "jittered_ttl", "peak_db_qps"));
  // Naive: at 10 s all 5000 keys miss at once (5000 reads/s, each a query).
  CHECK(figure(r, "naive", "peak_db_qps") > 4000);
  // Jittered: expiries spread over [7 s, 13 s], about 830 keys/s.
  CHECK(figure(r, "jittered_ttl", "peak_db_qps") < 0.5 * figure(r, "naive", "peak_db_qps"));
  CHECK(row(r, "jittered_ttl").p99 < row(r, "naive").p99 / 2);
}

TEST_CASE("a crash of the cache cluster makes every key miss once more") {
  Workload w = reads(1000, KeyDistribution::uniform(100));
  w.arrivals.kind = Arrivals::Kind::constant;
  const auto r =
      run_warmed(w, seconds(10), {"single_flight"}, {{"ttl", "100s"}}, 100, 1, [](Experiment& e) {
        SystemSlot& s = *e.systems()[0];
        e.at(seconds(5), [&s] { s.inject("crash", {}); });
      });
  // Single flight, TTL beyond the run: exactly one load per key after the crash.
  REQUIRE(figure(r, "single_flight", "db_queries") == 100);
}

TEST_CASE("the cache_problems script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("cache_problems.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 10);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("bad cache_problems parameters are refused with a clear message") {
  Experiment e;
  REQUIRE_THROWS_WITH(
      e.add(registry(), "cache_problems", "naive", {{"db_median", "5ms"}, {"db_p99", "1ms"}}),
      Catch::Contains("db_p99 must be at least db_median"));
  REQUIRE_THROWS_WITH(e.add(registry(), "cache_problems", "naive", {{"jitter", 1.5}}),
                      Catch::Contains("jitter"));
}
