#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"read_check_write", "optimistic_locking", "atomic_decrement",
                                 "pessimistic_lock"};
const char* const kFixes[] = {"optimistic_locking", "atomic_decrement", "pessimistic_lock"};

/// Constant arrivals at `rps` (every 1/rps from 1/rps up to `traffic`), every variant with
/// `params`; `fault` (if any) injected at `fault_at`.
ExperimentResult constant_run(double rps, Time traffic, const Map& params,
                              const std::string& fault = "", const Map& fault_params = {},
                              Time fault_at = 0) {
  Workload w = hldlab::testing::constant_workload(0);
  w.arrivals.spikes.push_back({0, traffic, rps});
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"ticketmaster", v, params});
  return hldlab::testing::run_experiment(w, traffic + seconds(1), systems, 1, [&](Experiment& e) {
    if (fault.empty()) return;
    for (const auto& s : e.systems())
      e.at(fault_at, [&slot = *s, fault, fault_params] { slot.inject(fault, fault_params); });
  });
}

/// Purchases that never overlap: every variant sells `sold` tickets and rejects the other
/// purchases, without a conflict. Sold out, the read-first variants stop after the SELECT and
/// the lock still needs a ROLLBACK, so the statements are known exactly.
void check_sells_then_rejects(const ExperimentResult& r, double requests, double sold) {
  const double rejected = requests - sold;
  const double statements[] = {2 * sold + rejected, 2 * sold + rejected, requests, 2 * requests};
  int i = 0;
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    REQUIRE(s.requests == requests);
    CHECK(s.completed == requests);
    CHECK(figure(s, "sold") == sold);
    CHECK(s.count(Outcome::ok) == sold);
    CHECK(s.count(Outcome::rejected) == rejected);
    CHECK(figure(s, "oversold") == 0);
    CHECK(figure(s, "lost_decrements") == 0);
    CHECK(figure(s, "retries") == 0);
    CHECK(figure(s, "db_statements") == statements[i++]);
  }
}

}  // namespace

TEST_CASE(
    "purchases that never overlap sell exactly the stock in every variant, then are rejected") {
  // 50 rps: a purchase takes at most 2 round trips of 2.2 ms, far less than the 20 ms gap.
  check_sells_then_rejects(constant_run(50, seconds(6), {{"stock", 100}}), 300, 100);
}

TEST_CASE(
    "k purchases that all read the last ticket before any writes: the naive variant issues k "
    "tickets, every fix exactly one") {
  // SELECTs end at t + 11 ms (t = 1..10 ms), the first UPDATE at 1 + 32 ms: all read 1.
  const auto r = constant_run(1000, milliseconds(10),
                              {{"stock", 1}, {"db_delay", "10ms"}, {"statement_time", "1ms"}});
  const auto& naive = row(r, "read_check_write");
  REQUIRE(naive.requests == 10);
  CHECK(figure(naive, "sold") == 10);
  CHECK(naive.count(Outcome::ok) == 10);
  CHECK(figure(naive, "oversold") == 9);
  CHECK(figure(naive, "lost_decrements") == 9);
  for (const char* v : kFixes) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "sold") == 1);
    CHECK(s.count(Outcome::ok) == 1);
    CHECK(s.count(Outcome::rejected) == 9);
    CHECK(figure(s, "oversold") == 0);
    CHECK(figure(s, "lost_decrements") == 0);
  }
  // Nine CAS conflicts, each retried once: the retry reads 0 and is a correct "sold out".
  CHECK(figure(row(r, "optimistic_locking"), "retries") == 9);
  CHECK(figure(row(r, "atomic_decrement"), "retries") == 0);
  CHECK(figure(row(r, "atomic_decrement"), "db_statements") == 10);
}

TEST_CASE(
    "k buyers who read the same version conflict k(k-1)/2 times under optimistic locking, one "
    "retry per conflict") {
  // Ten purchases 1 ms apart, no backoff: every round all remaining buyers read the same
  // version before the first CAS of the round; one wins, the others conflict and retry.
  const Map base{{"stock", 100},
                 {"db_delay", "10ms"},
                 {"statement_time", "1ms"},
                 {"backoff", "0s"},
                 {"jitter", 0.0}};
  SECTION("with enough retries, all ten buy after 9 + 8 + ... + 1 = 45 conflicts") {
    Map params = base;
    params["max_retries"] = 20;
    const auto r = constant_run(1000, milliseconds(10), params);
    const auto& s = row(r, "optimistic_locking");
    REQUIRE(s.requests == 10);
    CHECK(figure(s, "retries") == 45);
    CHECK(figure(s, "sold") == 10);
    CHECK(s.count(Outcome::ok) == 10);
    CHECK(figure(s, "db_statements") == 2 * (10 + 45));
    // Not sold out, yet the naive variant loses 9 of its 10 decrements: 99 left, 10 issued.
    const auto& naive = row(r, "read_check_write");
    CHECK(figure(naive, "sold") == 10);
    CHECK(figure(naive, "lost_decrements") == 9);
    CHECK(figure(naive, "oversold") == 0);
    CHECK(figure(row(r, "atomic_decrement"), "lost_decrements") == 0);
  }
  SECTION("with two retries, the 7 buyers who lose three rounds give up while tickets remain") {
    Map params = base;
    params["max_retries"] = 2;
    const auto r = constant_run(1000, milliseconds(10), params);
    const auto& s = row(r, "optimistic_locking");
    CHECK(figure(s, "retries") == 9 + 8);
    CHECK(figure(s, "sold") == 3);
    CHECK(s.count(Outcome::ok) == 3);
    CHECK(s.count(Outcome::error) == 7);
    CHECK(figure(s, "gave_up_with_stock") == 7);
  }
}

TEST_CASE(
    "with arrivals every s and a race window W, the naive variant issues exactly ceil(W/s) "
    "tickets per ticket in stock") {
  // W = time from the end of the SELECT to the end of the UPDATE = 2 * db_delay +
  // statement_time (500 us, times the slow_db factor). A purchase reads the value written by
  // the purchase ceil(W/s) before it, so ceil(W/s) purchases issue a ticket per decrement.
  struct Case {
    double rps;
    const char* db_delay;
    double slow;  // slow_db factor on the statement time (1: none)
    Time window;  // W
  };
  const Case cases[] = {{1000, "200us", 1, microseconds(900)},  // windows never overlap
                        {1000, "2ms", 1, microseconds(4500)},
                        {1250, "2ms", 1, microseconds(4500)},  // more contention
                        {1000, "2ms", 5, microseconds(6500)},  // a slow DB
                        {1000, "5ms", 1, microseconds(10500)}};
  const std::int64_t stock = 50;
  for (const Case& c : cases) {
    const auto r =
        constant_run(c.rps, seconds(1),
                     {{"stock", stock}, {"db_delay", c.db_delay}, {"statement_time", "500us"}},
                     "slow_db", {{"factor", c.slow}, {"duration", "1h"}});
    const Time gap = seconds(1) / static_cast<Time>(c.rps);
    const std::int64_t m = (c.window + gap - 1) / gap;
    INFO("rps " << c.rps << " db_delay " << c.db_delay << " slow " << c.slow
                << ": tickets per decrement " << m);
    const auto& naive = row(r, "read_check_write");
    CHECK(figure(naive, "sold") == m * stock);
    CHECK(figure(naive, "oversold") == (m - 1) * stock);
    CHECK(figure(naive, "lost_decrements") == (m - 1) * stock);
    for (const char* v : kFixes) {
      INFO(v);
      CHECK(figure(row(r, v), "sold") == stock);
      CHECK(figure(row(r, v), "oversold") == 0);
    }
  }
}

TEST_CASE("on random traffic over several events the fixes never oversell and the naive one does") {
  for (std::uint64_t seed : {1, 2, 3}) {
    Workload w = hldlab::testing::poisson_workload(3000);
    w.keys = KeyDistribution::zipf(1000, 1.0);
    const Map params{{"stock", 300}, {"events", 3}, {"max_retries", 3}};
    std::vector<hldlab::testing::SystemSpec> systems;
    for (const char* v : kVariants) systems.push_back({"ticketmaster", v, params});
    const auto r = hldlab::testing::run_experiment(w, seconds(2), systems, seed);
    INFO("seed " << seed);
    const auto& naive = row(r, "read_check_write");
    CHECK(figure(naive, "oversold") > 100);
    CHECK(figure(naive, "sold") > 900 + 100);
    for (const char* v : kFixes) {
      const auto& s = row(r, v);
      INFO(v);
      CHECK(s.completed == s.requests);
      CHECK(figure(s, "oversold") == 0);
      CHECK(figure(s, "lost_decrements") == 0);
      CHECK(figure(s, "sold") == s.count(Outcome::ok));
      CHECK(figure(s, "sold") <= 900);
    }
    // 6000 purchases for 900 tickets: the atomic decrement and the lock sell every one.
    CHECK(figure(row(r, "atomic_decrement"), "sold") == 900);
    CHECK(figure(row(r, "pessimistic_lock"), "sold") == 900);
    CHECK(figure(row(r, "optimistic_locking"), "retries") > 0);
    CHECK(figure(row(r, "atomic_decrement"), "retries") == 0);
  }
}

TEST_CASE(
    "the row lock serializes one event: purchases queue for one lock hold time each, 2 round "
    "trips") {
  // 1000 purchases 1 ms apart; the lock is held from the SELECT ... FOR UPDATE to the end of
  // the UPDATE: 2 * 1 ms + 2 * 200 us = 2.4 ms, longer than the gap, so the queue grows. The
  // last purchase (at 1 s) gets the lock after the 999 before it, the first at 1 ms + 1 ms.
  const auto r = constant_run(1000, seconds(1), {{"stock", 1000000}});
  const auto& lock = row(r, "pessimistic_lock");
  REQUIRE(lock.requests == 1000);
  CHECK(figure(lock, "sold") == 1000);
  const double hold = 2.4e-3, last_done = 2e-3 + 1000 * hold + 1e-3;
  CHECK(lock.max == Approx(last_done - 1.0).epsilon(0.02));
  // The atomic decrement never queues: one round trip of 2.2 ms for everybody.
  CHECK(row(r, "atomic_decrement").max == Approx(2.2e-3).epsilon(0.02));
}

TEST_CASE("a restock puts exactly count more tickets on sale") {
  SECTION("between purchases that never overlap: every variant sells them") {
    const auto r =
        constant_run(50, seconds(6), {{"stock", 10}}, "restock", {{"count", 5}}, seconds(3));
    for (const char* v : kVariants) {
      INFO(v);
      CHECK(figure(row(r, v), "sold") == 15);
      CHECK(figure(row(r, v), "oversold") == 0);
      CHECK(row(r, v).count(Outcome::rejected) == 300 - 15);
    }
  }
  SECTION("in the middle of a rush, with row locks held: the fixes sell exactly stock + count") {
    // 3000 purchases/s on 100 tickets; the restock lands while purchases hold the row lock or
    // have a CAS in flight. A purchase that read the row before must not write over it.
    const auto r = constant_run(3000, seconds(1), {{"stock", 100}, {"max_retries", 1000}},
                                "restock", {{"count", 100}}, milliseconds(20));
    for (const char* v : kFixes) {
      INFO(v);
      CHECK(figure(row(r, v), "sold") == 200);
      CHECK(figure(row(r, v), "oversold") == 0);
    }
  }
}

TEST_CASE("after a warm-up the figures count the purchases that arrived after it") {
  // 50 purchases/s that never overlap, 200 tickets; the warm-up ends at 3 s. The 149 purchases
  // before it (0.02 .. 2.98 s) buy 149 tickets; the 151 from 3 s on (3.00 .. 6.00 s) find 51.
  Experiment e({.duration = seconds(7), .warmup = seconds(3)});
  Workload w = hldlab::testing::constant_workload(0);
  w.arrivals.spikes.push_back({0, seconds(6), 50});
  e.set_workload(w);
  for (const char* v : kVariants) e.add(registry(), "ticketmaster", v, {{"stock", 200}});
  check_sells_then_rejects(e.run(), 151, 51);
}

TEST_CASE("the ticketmaster script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("ticketmaster.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("an unknown operation is refused") {
  Experiment e;
  SystemSlot& s = e.add(registry(), "ticketmaster", "atomic_decrement");
  REQUIRE_THROWS_WITH(s.call("sell_everything", Map{}), Catch::Contains("unknown operation"));
}
