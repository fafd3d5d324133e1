// The interleaving explorer against combinatorics, and the simulated threads against schedules
// worked out by hand and against the renewal theory of lost updates.
#include <catch2/catch.hpp>

#include "explore.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using concurrency::explore;
using concurrency::increment_program;
using concurrency::IncrementKind;
using concurrency::two_lock_program;
using hldlab::testing::figure;
using hldlab::testing::row;

namespace {

std::uint64_t binomial(std::uint64_t n, std::uint64_t k) {
  std::uint64_t r = 1;
  for (std::uint64_t i = 1; i <= k; ++i) r = r * (n - k + i) / i;
  return r;
}

concurrency::Exploration two_threads(IncrementKind kind, int k) {
  return explore({increment_program(kind, k), increment_program(kind, k)});
}

/// Every variant of `variants` on the same traffic.
ExperimentResult run(const Workload& w, Time duration, const std::vector<std::string>& variants,
                     const Map& params, std::uint64_t seed = 1) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const std::string& v : variants) systems.push_back({"concurrency", v, params});
  return hldlab::testing::run_experiment(w, duration, systems, seed);
}

}  // namespace

TEST_CASE(
    "two unsynchronized threads of k increments: C(6k, 3k) interleavings, all but the C(2k, k) "
    "serial ones lose an update") {
  for (int k = 1; k <= 3; ++k) {
    INFO("k = " << k);
    const auto e = two_threads(IncrementKind::unsynchronized, k);
    const std::uint64_t all = binomial(6 * k, 3 * k), serial = binomial(2 * k, k);
    CHECK(e.executions == all);            // 20, 924, 48620
    CHECK(e.lost_update == all - serial);  // 18, 918, 48600
    CHECK(e.deadlocked == 0);
    CHECK(e.finals.rbegin()->first == 2 * k);
    CHECK(e.finals.at(2 * k) == serial);
    // The classic puzzle: the counter can end as low as 2 (1 with a single increment each).
    CHECK(e.finals.begin()->first == (k == 1 ? 1 : 2));
  }
}

TEST_CASE("a mutex leaves only the C(2k, k) orders of the critical sections, none losing") {
  for (int k = 1; k <= 3; ++k) {
    INFO("k = " << k);
    const auto e = two_threads(IncrementKind::mutex, k);
    CHECK(e.executions == binomial(2 * k, k));
    CHECK(e.lost_update == 0);
    CHECK(e.deadlocked == 0);
    CHECK(e.finals.size() == 1);
    CHECK(e.finals.begin()->first == 2 * k);
  }
}

TEST_CASE(
    "compare-and-swap loses nothing; with one increment each it retries in exactly the 18 "
    "interleavings where the plain counter loses one") {
  const auto one = two_threads(IncrementKind::atomic_cas, 1);
  CHECK(one.executions == 20);
  CHECK(one.cas_retries == 18);
  CHECK(one.lost_update == 0);
  for (int k = 2; k <= 3; ++k) {
    INFO("k = " << k);
    const auto e = two_threads(IncrementKind::atomic_cas, k);
    CHECK(e.lost_update == 0);
    CHECK(e.finals.size() == 1);
    CHECK(e.finals.begin()->first == 2 * k);
    CHECK(e.cas_retries > 0);
  }
}

TEST_CASE(
    "two locks in opposite order: 2 of 6 interleavings deadlock; in one global order none of 2 "
    "does") {
  const auto opposite = explore({two_lock_program(0, 1, 1), two_lock_program(1, 0, 1)});
  CHECK(opposite.executions == 6);
  CHECK(opposite.deadlocked == 2);
  CHECK(opposite.lost_update == 0);
  const auto ordered = explore({two_lock_program(0, 1, 1), two_lock_program(0, 1, 1)});
  CHECK(ordered.executions == 2);
  CHECK(ordered.deadlocked == 0);
  for (int k = 2; k <= 3; ++k) {
    INFO("k = " << k);
    CHECK(explore({two_lock_program(0, 1, k), two_lock_program(0, 1, k)}).deadlocked == 0);
    CHECK(explore({two_lock_program(0, 1, k), two_lock_program(1, 0, k)}).deadlocked > 0);
  }
}

TEST_CASE(
    "arrivals every 1.25 step times: each increment's load falls before the previous store, so "
    "exactly every second increment is lost; the mutex and CAS lose none") {
  // Steps of 1 us, no jitter: increment i loads at 1.25 i us and stores 2 us later. The last
  // store before load i is that of i - 2 (at 1.25 i - 0.5), never i - 1 (at 1.25 i + 0.75):
  // the counter follows every second increment and ends at ceil(n / 2).
  const Map params{{"cores", 4}, {"jitter", 0.0}, {"preemption", 0.0}};
  const auto r = run(hldlab::testing::constant_workload(800000), microseconds(200),
                     {"unsynchronized", "mutex", "atomic_cas"}, params);
  const auto n = static_cast<double>(row(r, "unsynchronized").requests);
  REQUIRE(n >= 100);
  CHECK(figure(r, "unsynchronized", "lost_updates") == std::floor(n / 2));
  CHECK(figure(r, "mutex", "lost_updates") == 0);
  CHECK(figure(r, "mutex", "tasks") == n);
  CHECK(figure(r, "mutex", "lock_waits") > 0);
  CHECK(figure(r, "atomic_cas", "lost_updates") == 0);
  CHECK(figure(r, "atomic_cas", "tasks") == n);
  CHECK(figure(r, "atomic_cas", "cas_retries") > 0);
}

TEST_CASE("one core without preemption runs each increment alone: nothing is lost") {
  const auto r = run(hldlab::testing::poisson_workload(500000), microseconds(500),
                     {"unsynchronized"}, Map{{"cores", 1}, {"preemption", 0.0}});
  CHECK(row(r, "unsynchronized").requests > 100);
  CHECK(figure(r, "unsynchronized", "lost_updates") == 0);
  // With preemption at every step boundary, the single core interleaves and loses updates.
  const auto p = run(hldlab::testing::poisson_workload(500000), microseconds(500),
                     {"unsynchronized"}, Map{{"cores", 1}, {"preemption", 1.0}});
  CHECK(figure(p, "unsynchronized", "lost_updates") > 0);
}

TEST_CASE("the lost share agrees with renewal theory L w / (1 + L w) within 1 % on every seed") {
  // Free cores, no jitter: load and store w = 2 us apart. Going back from the last increment,
  // each survivor read the last store before its load: survivors are w + Exp(1/L) apart.
  for (double rps : {50000.0, 200000.0}) {
    const double lw = rps * 2e-6, expected = lw / (1 + lw);
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      INFO("rps " << rps << ", seed " << seed);
      const auto r =
          run(hldlab::testing::poisson_workload(rps), milliseconds(200), {"unsynchronized"},
              Map{{"cores", 64}, {"jitter", 0.0}, {"preemption", 0.0}}, seed);
      CHECK(std::abs(figure(r, "unsynchronized", "lost_share") - expected) < 0.01);
    }
  }
}

TEST_CASE(
    "transfers: opposite lock order deadlocks, each deadlock found in the wait-for graph ends "
    "one task with an error; lock order and try-lock never deadlock; balances always add up") {
  const auto r = run(hldlab::testing::poisson_workload(50000), milliseconds(100),
                     {"opposite_order", "lock_order", "try_lock_backoff"}, Map{{"accounts", 4}});
  const auto& o = row(r, "opposite_order");
  CHECK(figure(o, "deadlocks") > 0);
  const auto errors = [](const SystemResult& s) {
    return static_cast<double>(s.outcomes[static_cast<int>(Outcome::error)]);
  };
  CHECK(errors(o) == figure(o, "deadlocks"));
  CHECK(figure(o, "tasks") + figure(o, "deadlocks") == static_cast<double>(o.requests));
  for (const char* v : {"lock_order", "try_lock_backoff"}) {
    INFO(v);
    CHECK(figure(r, v, "deadlocks") == 0);
    CHECK(errors(row(r, v)) == 0);
    CHECK(figure(r, v, "tasks") == static_cast<double>(row(r, v).requests));
  }
  CHECK(figure(r, "try_lock_backoff", "backoffs") > 0);
  for (const char* v : {"opposite_order", "lock_order", "try_lock_backoff"}) {
    INFO(v);
    CHECK(figure(r, v, "balance_drift") == 0);
    CHECK(row(r, v).unfinished == 0);
  }
}

TEST_CASE("the counter variants see the same requests and the same step times") {
  // Common random numbers: with jitter and preemption, every variant still completes the same
  // requests; the unsynchronized and CAS programs (3 steps each) execute the same steps where
  // no CAS fails: their step counts differ by exactly 3 per retry.
  const auto r = run(hldlab::testing::poisson_workload(100000), milliseconds(50),
                     {"unsynchronized", "atomic_cas"}, Map{});
  CHECK(row(r, "unsynchronized").requests == row(r, "atomic_cas").requests);
  CHECK(figure(r, "atomic_cas", "steps") - figure(r, "unsynchronized", "steps") ==
        3 * figure(r, "atomic_cas", "cas_retries"));
}

TEST_CASE(
    "the explore operation runs the system's own program on two threads; try-lock with backoff "
    "is refused (its retries are unbounded)") {
  Experiment e;
  SystemSlot& unsynchronized = e.add(hldlab::testing::registry(), "concurrency", "unsynchronized");
  SystemSlot& opposite = e.add(hldlab::testing::registry(), "concurrency", "opposite_order");
  SystemSlot& backoff = e.add(hldlab::testing::registry(), "concurrency", "try_lock_backoff");
  const Value three = unsynchronized.call("explore", Map{{"increments", 3}});
  CHECK(three.as_map().at("executions").as_int() == 48620);
  CHECK(three.as_map().at("lost_update").as_int() == 48600);
  CHECK(three.as_map().at("min_final").as_int() == 2);
  const Value one = opposite.call("explore", Map{});
  CHECK(one.as_map().at("executions").as_int() == 6);
  CHECK(one.as_map().at("deadlocked").as_int() == 2);
  CHECK_THROWS_WITH(backoff.call("explore", Map{}), Catch::Contains("try_lock_backoff"));
}
