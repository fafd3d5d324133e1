#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::registry;
using hldlab::testing::row;

namespace {

std::int64_t figure(const ExperimentResult& r, const std::string& label, const std::string& name) {
  return row(r, label).figures.at(name).as_int();
}
double real_figure(const ExperimentResult& r, const std::string& label, const std::string& name) {
  return row(r, label).figures.at(name).as_double();
}

/// One hot key (98% of 10k reads/s) whose value costs a 50 ms query, TTL 5 s, cached at 0.
ExperimentResult stampede_run() {
  ExperimentConfig config;
  config.seed = 21;
  config.duration = seconds(30);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 10000;
  w.keys = KeyDistribution::hotspot(100000, 1e-5, 0.98);
  e.set_workload(w);
  for (const char* v : {"naive", "single_flight", "early_expiry", "background_refresh"}) {
    SystemSlot& s =
        e.add(registry(), "cache_problems", v,
              {{"ttl", "5s"}, {"db_median", "50ms"}, {"db_p99", "150ms"}, {"db_workers", 64}});
    s.call("warm", {{"keys", 1}});
  }
  return e.run();
}

}  // namespace

TEST_CASE(
    "at each expiry of a hot key the naive cache sends hundreds of queries, single flight one") {
  const auto r = stampede_run();
  INFO("dup loads: naive " << figure(r, "naive", "dup_loads") << " early "
                           << figure(r, "early_expiry", "dup_loads") << " refresh "
                           << figure(r, "background_refresh", "dup_loads"));
  // 9800 reads/s of the hot key during a ~50 ms reload, five expiries in 30 s.
  CHECK(figure(r, "naive", "dup_loads") > 500);
  REQUIRE(figure(r, "single_flight", "dup_loads") == 0);
  // XFetch: about e - 1 extra recomputations per expiry at beta = 1 (plus rare cold-key races).
  CHECK(figure(r, "early_expiry", "dup_loads") <= 30);
  CHECK(figure(r, "background_refresh", "dup_loads") <= 30);
  for (const char* v : {"single_flight", "early_expiry", "background_refresh"}) {
    INFO(v << " peak " << real_figure(r, v, "peak_db_qps") << " vs naive "
           << real_figure(r, "naive", "peak_db_qps"));
    CHECK(real_figure(r, v, "peak_db_qps") < real_figure(r, "naive", "peak_db_qps") / 3);
    // Every waiter on a shared load is answered.
    CHECK(row(r, v).completed == row(r, v).requests);
  }
}

TEST_CASE("a Bloom filter lets absent keys through at the false-positive rate theory predicts") {
  ExperimentConfig config;
  config.seed = 2;
  config.duration = seconds(50);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 2000;
  w.keys = KeyDistribution::uniform(10000);
  e.set_workload(w);
  SystemSlot& bloom = e.add(registry(), "cache_problems", "bloom_filter",
                            {{"existing_keys", 10000}, {"bloom_bits_per_key", 10.0}});
  e.at(0, [&bloom] { bloom.inject("penetration_attack", {{"share", 1.0}}); });
  const auto r = e.run();
  // Every request asks for a fresh absent id: the filter stops all but its false positives.
  const double k = std::round(10 * std::log(2.0));
  const double theory = std::pow(1 - std::exp(-k / 10), k);
  const auto queried = figure(r, "bloom_filter", "absent_db");
  const auto rejected = bloom.call("stats", {})["bloom_rejections"].as_int();
  REQUIRE(queried + rejected == row(r, "bloom_filter").requests);
  const double measured = static_cast<double>(queried) / static_cast<double>(queried + rejected);
  INFO("measured FPR " << measured << ", theory " << theory);
  CHECK(std::abs(measured - theory) < 0.15 * theory);
}

TEST_CASE("null caching queries each absent key once per null TTL, naive on every request") {
  ExperimentConfig config;
  config.seed = 3;
  config.duration = seconds(20);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 1000;
  w.keys = KeyDistribution::uniform(2000);
  e.set_workload(w);
  for (const char* v : {"naive", "null_cache"})
    e.add(registry(), "cache_problems", v, {{"existing_keys", 1000}, {"null_ttl", "60s"}});
  const auto r = e.run();
  // Keys 1000..1999 do not exist. With a null TTL longer than the run each is loaded once,
  // plus the loads that raced with its first one (counted as duplicates).
  const auto absent = figure(r, "null_cache", "absent_db");
  CHECK(absent - figure(r, "null_cache", "dup_loads") <= 1000);
  CHECK(absent >= 990);
  // Naive: about half of the 20 000 requests are for absent keys, and each is a query.
  CHECK(figure(r, "naive", "absent_db") > 9000);
}

TEST_CASE("a celebrity key saturates its cache node; local L1 caches take the load off it") {
  ExperimentConfig config;
  config.seed = 4;
  config.duration = seconds(5);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 60000;
  w.keys = KeyDistribution::hotspot(100000, 1e-5, 0.5);
  e.set_workload(w);
  for (const char* v : {"naive", "local_l1"}) {
    SystemSlot& s =
        e.add(registry(), "cache_problems", v, {{"ttl", "60s"}, {"node_service", "40us"}});
    s.call("warm", {{"keys", 100000}});
  }
  const auto r = e.run();
  // Hot node: 30k reads/s of the key plus 1/8 of the rest, at 25k lookups/s.
  CHECK(real_figure(r, "naive", "hot_node_util") > 0.99);
  CHECK(row(r, "naive").count(Outcome::rejected) > 1000);
  // With L1: 20 app servers reload it about once per l1_ttl (1 s, jittered) each.
  CHECK(real_figure(r, "local_l1", "hot_node_util") < 0.3);
  CHECK(row(r, "local_l1").count(Outcome::rejected) == 0);
  CHECK(row(r, "local_l1").p99 < row(r, "naive").p99 / 10);
}

TEST_CASE("keys warmed together with one TTL expire together; a jittered TTL spreads the load") {
  ExperimentConfig config;
  config.seed = 5;
  config.duration = seconds(30);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 5000;
  w.keys = KeyDistribution::uniform(5000);
  e.set_workload(w);
  for (const char* v : {"naive", "jittered_ttl"}) {
    SystemSlot& s = e.add(registry(), "cache_problems", v,
                          {{"ttl", "10s"}, {"jitter", 0.3}, {"db_workers", 64}});
    s.call("warm", {{"keys", 5000}});
  }
  const auto r = e.run();
  INFO("peak naive " << real_figure(r, "naive", "peak_db_qps") << " jittered "
                     << real_figure(r, "jittered_ttl", "peak_db_qps"));
  // Naive: at 10 s all 5000 keys miss at once (5000 reads/s, each a query).
  CHECK(real_figure(r, "naive", "peak_db_qps") > 4000);
  // Jittered: expiries spread over [7 s, 13 s], about 830 keys/s.
  CHECK(real_figure(r, "jittered_ttl", "peak_db_qps") <
        0.5 * real_figure(r, "naive", "peak_db_qps"));
  CHECK(row(r, "jittered_ttl").p99 < row(r, "naive").p99 / 2);
}

TEST_CASE("a crash of the cache cluster makes every key miss once more") {
  ExperimentConfig config;
  config.duration = seconds(10);
  Experiment e(config);
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 1000;
  w.keys = KeyDistribution::uniform(100);
  e.set_workload(w);
  SystemSlot& s = e.add(registry(), "cache_problems", "single_flight", {{"ttl", "100s"}});
  s.call("warm", {{"keys", 100}});
  e.at(seconds(5), [&s] { s.inject("crash", {}); });
  const auto r = e.run();
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
  ExperimentConfig config;
  Experiment e(config);
  REQUIRE_THROWS_WITH(
      e.add(registry(), "cache_problems", "naive", {{"db_median", "5ms"}, {"db_p99", "1ms"}}),
      Catch::Contains("db_p99 must be at least db_median"));
  REQUIRE_THROWS_WITH(e.add(registry(), "cache_problems", "naive", {{"jitter", 1.5}}),
                      Catch::Contains("jitter"));
}
