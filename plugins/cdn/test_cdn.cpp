#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// One region 250 ms from the origin and 20 ms from its edge; the origin takes 20 ms, so a
/// fetch from the edge takes F = 270 ms and a miss 290 ms.
Map one_region(Map more = {}) {
  more["origin_rtts"] = List{250.0};
  more["edge_rtts"] = List{20.0};
  return more;
}

/// Reads of one object every 10 ms (10 ms, 20 ms, ...) for `traffic`; `setup` schedules
/// actions.
ExperimentResult one_object(Time traffic, const std::vector<hldlab::testing::SystemSpec>& systems,
                            const std::function<void(Experiment&)>& setup = {}) {
  return run_experiment(hldlab::testing::constant_workload(100, milliseconds(1), 1), traffic,
                        systems, 1, setup);
}

/// Run `fn(slot)` at `at` in every system of `e`.
void at_every_system(Experiment& e, Time at, const std::function<void(SystemSlot&)>& fn) {
  for (const auto& s : e.systems()) {
    SystemSlot* slot = s.get();
    e.at(at, [slot, fn] { fn(*slot); });
  }
}

}  // namespace

TEST_CASE(
    "a miss pays the edge and the origin, requests during its fetch wait for it, then hits pay the "
    "edge") {
  // 200 reads at 10 ms .. 2 s. The first misses (290 ms; the copy lands at 280 ms), the 26 of
  // 20 .. 270 ms wait for that fetch (20 ms + 280 ms - t), the 173 from 280 ms on take 20 ms.
  // Mean: (290 + 4030 + 173 * 20) / 200 = 38.9 ms.
  const auto r = one_object(milliseconds(2005), {{"cdn", "edge", one_region({{"max_age", 1000}})},
                                                 {"cdn", "origin_only", one_region()}});
  CHECK(row(r, "edge").requests == 200);
  CHECK(row(r, "edge").count(Outcome::miss) == 1);
  CHECK(row(r, "edge").count(Outcome::hit) == 199);
  CHECK(figure(r, "edge", "origin_requests") == 1);
  CHECK(row(r, "edge").mean == Approx(0.0389).epsilon(1e-9));
  CHECK(row(r, "edge").max == Approx(0.290).epsilon(1e-9));
  // Without edges every read pays 250 ms + 20 ms, and the origin sees all of them.
  CHECK(row(r, "origin_only").mean == Approx(0.270).epsilon(1e-9));
  CHECK(figure(r, "origin_only", "origin_requests") == 200);
  CHECK(figure(r, "origin_only", "p50_region0") == Approx(0.270).epsilon(0.01));
}

TEST_CASE(
    "a copy stays fresh max-age after it lands: one origin fetch per cycle of max-age + fetch") {
  // max-age 1.005 s: a copy fetched at t expires at t + 0.27 + 1.005 = t + 1.275 s, so the next
  // miss is the read at t + 1.28 s: one miss every 128 reads, 10 in 1280 reads.
  const auto r =
      one_object(milliseconds(12805), {{"cdn", "edge", one_region({{"max_age", 1.005}})}});
  CHECK(row(r, "edge").requests == 1280);
  CHECK(row(r, "edge").count(Outcome::miss) == 10);
  CHECK(figure(r, "edge", "origin_requests") == 10);
}

TEST_CASE("the edge hit ratio follows the renewal formula lambda (T + F) / (1 + lambda (T + F))") {
  // 100 objects, 100 reads/s: lambda = 1/s per object, F = 0.27 s. 20 000 reads; the ratio's
  // standard deviation is under 0.003.
  for (double t : {1.0, 5.0}) {
    Workload w = hldlab::testing::poisson_workload(100, milliseconds(1), 100);
    const auto r = run_experiment(w, seconds(200), {{"cdn", "edge", one_region({{"max_age", t}})}});
    const double x = 1.0 * (t + 0.27);
    INFO("max-age " << t << " s: hit ratio " << row(r, "edge").hit_ratio << ", theory "
                    << x / (1 + x));
    CHECK(std::abs(row(r, "edge").hit_ratio - x / (1 + x)) < 0.015);
  }
}

TEST_CASE("a shield makes one origin fetch per expiry where three edges make three") {
  // Three regions read one object 300 times a second; max-age 1 s. Each edge refetches once per
  // cycle; with a shield the edges' copies carry the shield's age, so they expire together and
  // the shield fetches once for all three.
  Workload w = hldlab::testing::constant_workload(300, milliseconds(1), 1);
  w.clients = 300;
  const auto r =
      run_experiment(w, seconds(10),
                     {{"cdn", "edge", {{"max_age", 1}}}, {"cdn", "edge_shield", {{"max_age", 1}}}});
  const double edge = figure(r, "edge", "origin_requests");
  const double shield = figure(r, "edge_shield", "origin_requests");
  INFO("origin requests: edges " << edge << ", shield " << shield);
  // Cycles of about 1 s + the fetch (40 to 290 ms): 8 to 10 in 10 s, per edge or for the shield.
  CHECK(shield >= 8);
  CHECK(shield <= 10);
  CHECK(edge >= 3 * 7);
  CHECK(edge > 2.5 * shield);
}

TEST_CASE(
    "after an update a purge serves stale copies for its delay, TTL until expiry, versioned URLs "
    "never") {
  // Reads every 10 ms, max-age 1000 s; the object changes at 5.005 s. TTL: the 500 reads of
  // 5.01 .. 10.00 s get the old version. Purge (2 s): the 200 of 5.01 .. 7.00 s, then a miss.
  // Versioned: the new URL misses once, nothing stale.
  const auto r = one_object(
      milliseconds(10005),
      {{"cdn", "edge", one_region({{"max_age", 1000}, {"invalidation", "ttl"}}), "ttl"},
       {"cdn", "edge", one_region({{"max_age", 1000}, {"invalidation", "purge"}}), "purge"},
       {"cdn", "edge", one_region({{"max_age", 1000}, {"invalidation", "versioned"}}),
        "versioned"}},
      [](Experiment& e) {
        at_every_system(e, milliseconds(5005), [](SystemSlot& s) {
          s.call("update", Map{{"key", 0}});
        });
      });
  CHECK(figure(r, "ttl", "stale_responses") == 500);
  CHECK(figure(r, "purge", "stale_responses") == 200);
  CHECK(figure(r, "purge", "purges") == 1);
  CHECK(figure(r, "purge", "origin_requests") == 2);
  CHECK(figure(r, "versioned", "stale_responses") == 0);
  CHECK(figure(r, "versioned", "origin_requests") == 2);
  CHECK(figure(r, "ttl", "origin_requests") == 1);
}

TEST_CASE("stale-while-revalidate answers expired copies at once and refreshes them behind") {
  // max-age 1.005 s, as above: 30 refreshes in 3840 reads. Without it, every refresh is a miss
  // the reader waits for (290 ms) and 26 reads queue behind it: 810 slow reads of 3840. With it
  // only the first fetch is waited for: 27 slow reads (0.7 %), the P99 is a hit (20 ms).
  const auto r = one_object(
      milliseconds(38405),
      {{"cdn", "edge", one_region({{"max_age", 1.005}}), "revalidate"},
       {"cdn", "edge", one_region({{"max_age", 1.005}, {"stale_while_revalidate", 60}}), "swr"}});
  CHECK(row(r, "swr").count(Outcome::miss) == 1);
  CHECK(figure(r, "swr", "origin_requests") == 30);
  CHECK(row(r, "revalidate").count(Outcome::miss) == 30);
  CHECK(figure(r, "swr", "p99_region0") == Approx(0.020).epsilon(0.01));
  CHECK(figure(r, "revalidate", "p99_region0") > 0.25);
  // The reads served during a refresh get the old copy, but the object did not change: not stale.
  CHECK(figure(r, "swr", "stale_responses") == 0);
}

TEST_CASE("stale-if-error answers the expired copy while the origin is down") {
  // Misses at 0.01, 1.29, 2.57 s, the next due at 3.85 s; the origin is down 3.005 .. 5.005 s:
  // the 116 reads of 3.85 .. 5.00 s find an expired copy and a dead origin.
  const auto r = one_object(
      milliseconds(8005),
      {{"cdn", "edge", one_region({{"max_age", 1.005}}), "no_stale"},
       {"cdn", "edge", one_region({{"max_age", 1.005}, {"stale_if_error", 60}}), "stale_if_error"}},
      [](Experiment& e) {
        at_every_system(e, milliseconds(3005), [](SystemSlot& s) {
          s.inject("origin_outage", Map{{"duration", 2.0}});
        });
      });
  CHECK(row(r, "no_stale").count(Outcome::error) == 116);
  CHECK(figure(r, "no_stale", "origin_errors") == 116);
  CHECK(row(r, "stale_if_error").count(Outcome::error) == 0);
  CHECK(figure(r, "stale_if_error", "stale_if_error_served") == 116);
}

TEST_CASE("the cdn script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("cdn.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 10);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("regions must have one edge round trip each") {
  Experiment e;
  REQUIRE_THROWS_WITH(e.add(registry(), "cdn", "edge", {{"edge_rtts", List{5.0}}}),
                      Catch::Contains("one round trip per region"));
}
