#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::figure;
using hldlab::testing::registry;
using hldlab::testing::row;

namespace {

// 100 rps of constant arrivals (request k at (k+1) * 10 ms), 1 ms of app work each: a replica
// finishes a request long before the next one, so no event ever ties with an arrival.
Workload steady(std::uint64_t keys) {
  return hldlab::testing::constant_workload(100, milliseconds(1), keys);
}

/// Both variants on `w` for `duration` seconds, `setup` scheduling faults into each; `inspect`
/// may call operations on the systems (naive, resilient) after the run.
ExperimentResult run_both(const Workload& w, double duration,
                          const std::function<void(Experiment&, SystemSlot&)>& setup,
                          const Map& params = {}, std::uint64_t seed = 1,
                          const std::function<void(SystemSlot&, SystemSlot&)>& inspect = {}) {
  Experiment e({.seed = seed, .duration = seconds(duration)});
  e.set_workload(w);
  std::vector<SystemSlot*> slots;
  for (const char* v : {"naive", "resilient"}) {
    slots.push_back(&e.add(registry(), "chaos", v, params));
    setup(e, *slots.back());
  }
  ExperimentResult r = e.run();
  if (inspect) inspect(*slots[0], *slots[1]);
  for (const auto& s : r.systems) {
    INFO(s.label << ": " << s.error);
    REQUIRE(s.error.empty());
    REQUIRE(s.completed == s.requests);  // nothing disappears
  }
  return r;
}

double fig(const ExperimentResult& r, const char* label, const char* name) {
  return figure(r, label, name);
}

}  // namespace

TEST_CASE(
    "the chaos monkey kills ceil(duration / interval) - 1 replicas, on the same schedule in "
    "every variant") {
  Value naive, resilient;
  const auto r = run_both(
      steady(10), 30,
      [](Experiment& e, SystemSlot& s) {
        e.at(seconds(1), [&s] {
          s.inject("chaos_monkey", {{"interval", 2.5}, {"downtime", 1.0}, {"duration", 20.0}});
        });
      },
      {}, 1,
      [&](SystemSlot& n, SystemSlot& s) {
        naive = n.call("kills", {});
        resilient = s.call("kills", {});
      });
  // Kills at 1 + 2.5 k s for k = 1 .. 7 (1 + 8 * 2.5 = 21 s is the end of the monkey's run).
  REQUIRE(fig(r, "naive", "kills") == 7);
  REQUIRE(fig(r, "resilient", "kills") == 7);
  REQUIRE(naive.as_list().size() == 7);
  bool all_same_replica = true;
  for (std::size_t k = 0; k < 7; ++k) {
    CHECK(naive.as_list()[k]["at"].as_double() == Approx(1 + 2.5 * (k + 1.0)).margin(1e-9));
    CHECK(naive.as_list()[k]["replica"].as_int() == resilient.as_list()[k]["replica"].as_int());
    CHECK(naive.as_list()[k]["at"].as_double() == resilient.as_list()[k]["at"].as_double());
    all_same_replica = all_same_replica && naive.as_list()[k]["replica"].as_int() ==
                                               naive.as_list()[0]["replica"].as_int();
  }
  CHECK_FALSE(all_same_replica);  // a random victim each time
  REQUIRE(row(r, "naive").metrics.at("kills").as_double() == 7);
}

TEST_CASE(
    "naive sends a quarter of the traffic to a dead replica for its whole downtime; health "
    "checks eject it within one interval plus the probe timeout") {
  // One kill at 5.255 s (between two arrivals), down for 4 s: arrivals 5.26 ... 9.25 s.
  const auto r = run_both(steady(1), 20, [](Experiment& e, SystemSlot& s) {
    e.at(seconds(3.255), [&s] {
      s.inject("chaos_monkey", {{"interval", 2.0}, {"downtime", 4.0}, {"duration", 2.5}});
    });
  });
  REQUIRE(fig(r, "naive", "kills") == 1);
  // Round-robin over 4 replicas: 100 of the 400 arrivals of the outage go to the dead one, and
  // each hangs until the client's 2 s deadline.
  REQUIRE(fig(r, "naive", "sent_to_dead") == 100);
  REQUIRE(fig(r, "naive", "client_timeouts") == 100);
  REQUIRE(row(r, "naive").count(Outcome::timeout) == 100);
  // Its last one is among the last four arrivals before the restart (9.22 ... 9.25 s).
  CHECK(fig(r, "naive", "max_dead_age") <= 9.25 - 5.255 + 1e-9);
  CHECK(fig(r, "naive", "max_dead_age") >= 9.22 - 5.255 - 1e-9);
  REQUIRE(row(r, "naive").requests == 1999);  // arrivals at 0.01 ... 19.99 s
  REQUIRE(fig(r, "naive", "availability") == Approx(1 - 100.0 / 1999).margin(1e-12));
  // The hypothesis per 5 s window: only [5 s, 10 s) breaks it, at 400 / 500 answered.
  REQUIRE(fig(r, "naive", "windows") == 4);
  REQUIRE(fig(r, "naive", "windows_violating") == 1);
  REQUIRE(fig(r, "naive", "worst_window_success") == Approx(0.8).margin(1e-12));
  REQUIRE(row(r, "naive").metrics.at("windows_violating").as_double() == 1);
  // Resilient: probes every 0.5 s; the one at 5.5 s goes unanswered and ejects the replica at
  // 5.6 s. Until then each attempt sent there times out after 100 ms and is retried on
  // another replica: no request fails.
  REQUIRE(fig(r, "resilient", "health_ejections") == 1);
  CHECK(fig(r, "resilient", "max_dead_age") < 5.6 - 5.255);
  CHECK(fig(r, "resilient", "sent_to_dead") > 0);
  REQUIRE(fig(r, "resilient", "retries") == fig(r, "resilient", "sent_to_dead"));
  REQUIRE(fig(r, "resilient", "attempt_timeouts") == fig(r, "resilient", "sent_to_dead"));
  REQUIRE(fig(r, "resilient", "availability") == 1);
  REQUIRE(fig(r, "resilient", "windows_violating") == 0);
  CHECK(fig(r, "resilient", "worst_window_p99") < 0.3);
  // Back at 9.255 s, back in rotation at the probe of 9.5 s.
  REQUIRE(row(r, "resilient").metrics.at("replicas_in_rotation").as_double() == 4);
  REQUIRE(row(r, "resilient").metrics.at("hypothesis_ok").as_double() == 1);
}

TEST_CASE(
    "a database partition hangs naive's cache misses until the client deadline; resilient "
    "opens its breaker and answers from the stale cache") {
  // One key, cached for 2 s, judged when the replica is done (1 ms after arrival), written when
  // the database answers (11 ms after arrival): misses at 0.01, 2.02, 4.03 s; the entry of
  // 4.041 s has expired for the arrival of 6.04 s, inside the partition of 5 s .. 8 s.
  const auto r = run_both(steady(1), 12, [](Experiment& e, SystemSlot& s) {
    e.at(seconds(5), [&s] { s.inject("db_partition", {{"duration", 3.0}}); });
  });
  // Naive: every arrival from 6.04 s to 7.99 s misses and its database call is lost.
  CHECK(fig(r, "naive", "client_timeouts") == 196);
  CHECK(row(r, "naive").count(Outcome::timeout) == 196);
  // Resilient: the calls of 6.04 s on time out after 50 ms; the 7th failure (of the call of
  // 6.10 s, at 6.151 s) makes 7 of the last 10 calls failures: open, with the calls of 6.11 ..
  // 6.14 s still out (11 database timeouts). Half-open at 7.151 s: the arrival of 7.15 s is
  // the probe, it times out (the 12th): open again at 7.201 s. Half-open at 8.201 s, partition
  // over: the probe of 8.20 s succeeds at 8.211 s. Arrivals from 6.04 to 8.19 s got the stale
  // value; database calls: 3 before, 11 + 2 probes, and the refresh of 10.21 s.
  CHECK(fig(r, "resilient", "breaker_opens") == 2);
  CHECK(fig(r, "resilient", "stale_fallbacks") == 216);
  CHECK(row(r, "resilient").metrics.at("timeouts{kind=database}").as_double() == 12);
  CHECK(fig(r, "resilient", "db_calls") == 3 + 11 + 2 + 1);
  CHECK(fig(r, "naive", "db_calls") == 3 + 196 + 2);  // then misses at 8.00 and 10.01 s
  CHECK(fig(r, "resilient", "availability") == 1);
}

TEST_CASE(
    "a slow database breaks naive's P99 in the window it hits; resilient times the calls out "
    "and holds") {
  // 100 keys asked once a second each, cached 2 s: about a third of the requests miss. The
  // database link adds 400 ms from 21 s to 24 s, inside the window [20 s, 25 s).
  const auto r = run_both(steady(100), 30, [](Experiment& e, SystemSlot& s) {
    e.at(seconds(21), [&s] { s.inject("db_latency", {{"delay", 0.4}, {"duration", 3.0}}); });
  });
  REQUIRE(fig(r, "naive", "windows_violating") == 1);
  REQUIRE(fig(r, "naive", "worst_window_success") == 1);
  CHECK(fig(r, "naive", "worst_window_p99") > 0.4);
  REQUIRE(fig(r, "resilient", "windows_violating") == 0);
  CHECK(fig(r, "resilient", "breaker_opens") >= 1);
  CHECK(fig(r, "resilient", "stale_fallbacks") > 0);
  CHECK(row(r, "resilient").max < 0.3);
  REQUIRE(fig(r, "resilient", "availability") == 1);
}

TEST_CASE(
    "a skewed clock makes naive serve cache entries past their TTL; expiry by the cache's own "
    "clock is immune") {
  auto skewed = [](Experiment& e, SystemSlot& s) {
    e.at(0, [&s] { s.inject("clock_skew", {{"replica", 0}, {"offset", 10.0}}); });
  };
  const auto with = run_both(steady(10), 20, skewed);
  const auto without = run_both(steady(10), 20, [](Experiment&, SystemSlot&) {});
  // Clocks that agree: fresh means younger than the TTL, by construction.
  REQUIRE(fig(without, "naive", "served_past_ttl") == 0);
  // Replica 0 stamps its entries 10 s ahead: the others take them for fresh for 12 s.
  CHECK(fig(with, "naive", "served_past_ttl") > 0);
  CHECK(fig(with, "naive", "db_calls") != fig(without, "naive", "db_calls"));
  REQUIRE(row(with, "naive").metrics.at("served_past_ttl").as_double() ==
          fig(with, "naive", "served_past_ttl"));
  // Resilient never compares clocks: the skew changes nothing it does.
  REQUIRE(fig(with, "resilient", "served_past_ttl") == 0);
  REQUIRE(fig(with, "resilient", "db_calls") == fig(without, "resilient", "db_calls"));
}

TEST_CASE("an empty retry budget refuses every retry: attempts to a dead replica then fail") {
  const auto r = run_both(
      steady(1), 20,
      [](Experiment& e, SystemSlot& s) {
        e.at(seconds(3.255), [&s] {
          s.inject("chaos_monkey", {{"interval", 2.0}, {"downtime", 4.0}, {"duration", 2.5}});
        });
      },
      {{"retry_ratio", 0.0}, {"retry_reserve", 0.0}});
  REQUIRE(fig(r, "resilient", "retries") == 0);
  CHECK(fig(r, "resilient", "retries_denied") > 0);
  REQUIRE(fig(r, "resilient", "retries_denied") == fig(r, "resilient", "sent_to_dead"));
  REQUIRE(row(r, "resilient").count(Outcome::timeout) == fig(r, "resilient", "sent_to_dead"));
}

TEST_CASE(
    "on every seed, health checks keep traffic off a dead replica within health_interval + "
    "health_timeout, and naive sends to it until it is back") {
  // Poisson 400 rps, a kill every 3.3 s (down 1.7 s): the kills fall at every phase of the
  // 0.5 s probe period.
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    const auto r = run_both(
        hldlab::testing::poisson_workload(400, milliseconds(3), 200), 20,
        [](Experiment& e, SystemSlot& s) {
          e.at(seconds(0.1), [&s] {
            s.inject("chaos_monkey", {{"interval", 3.3}, {"downtime", 1.7}, {"duration", 19.0}});
          });
        },
        {}, seed);
    REQUIRE(fig(r, "resilient", "kills") == 5);
    REQUIRE(fig(r, "resilient", "health_ejections") == 5);
    CHECK(fig(r, "resilient", "max_dead_age") <= 0.5 + 0.1);
    CHECK(fig(r, "resilient", "availability") == 1);
    // About 100 arrivals a second reach the victim: the last one within ~50 ms of the restart.
    CHECK(fig(r, "naive", "max_dead_age") <= 1.7);
    CHECK(fig(r, "naive", "max_dead_age") > 1.6);
  }
}

TEST_CASE("the chaos script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("chaos.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 6);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("a skew on a replica that does not exist is refused") {
  Experiment e;
  SystemSlot& s = e.add(registry(), "chaos", "naive", {{"replicas", 2}});
  REQUIRE_THROWS_WITH(s.inject("clock_skew", {{"replica", 5}, {"offset", 1.0}}),
                      Catch::Contains("no replica 5"));
}
