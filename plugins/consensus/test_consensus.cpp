#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::registry;
using hldlab::testing::row;

namespace {

struct Trials {
  double mean_ms, p99_ms, max_ms;
  std::int64_t trials, split_votes, no_leader;
};

Trials elections(const char* variant, const Map& params, std::int64_t trials, std::uint64_t seed) {
  ExperimentConfig config;
  config.seed = seed;
  Experiment e(config);
  SystemSlot& s = e.add(registry(), "consensus", variant, params);
  const Value v = s.call("elections", {{"trials", trials}});
  return {v["mean_ms"].as_double(), v["p99_ms"].as_double(),   v["max_ms"].as_double(),
          v["trials"].as_int(),     v["split_votes"].as_int(), v["no_leader"].as_int()};
}

Trials range(int max_ms, std::uint64_t seed) {
  return elections(
      max_ms == 150 ? "fixed" : "randomized",
      {{"election_timeout_min", "150ms"}, {"election_timeout_max", std::to_string(max_ms) + "ms"}},
      500, seed);
}

}  // namespace

TEST_CASE(
    "fixed election timeouts take far longer to elect than any randomized range (Raft fig. 16)") {
  for (std::uint64_t seed : {1, 2}) {
    const Trials fixed = range(150, seed), r155 = range(155, seed), r175 = range(175, seed),
                 r200 = range(200, seed), r300 = range(300, seed);
    INFO("seed " << seed << " means " << fixed.mean_ms << " " << r155.mean_ms << " " << r175.mean_ms
                 << " " << r200.mean_ms << " " << r300.mean_ms);
    REQUIRE(fixed.trials == 500);
    REQUIRE(fixed.no_leader == 0);
    for (const Trials* t : {&r155, &r175, &r200, &r300}) {
      CHECK(fixed.mean_ms > 10 * t->mean_ms);
      CHECK(fixed.p99_ms > 10 * t->p99_ms);
    }
    // Wider ranges converge faster: the mean falls up to 150-200 ms, the tail all the way.
    CHECK(r155.mean_ms > r175.mean_ms);
    CHECK(r175.mean_ms > r200.mean_ms);
    CHECK(r155.p99_ms > r175.p99_ms);
    CHECK(r175.p99_ms > r200.p99_ms);
    CHECK(r200.p99_ms > r300.p99_ms);
    CHECK(r155.max_ms > r300.max_ms);
    // Nothing can be elected before the first timeout (150 ms after the last heartbeat, which
    // is at most one heartbeat interval before the crash) plus a vote round trip (>= 2 ms).
    CHECK(r300.mean_ms > 100 + 2);
  }
}

TEST_CASE("split votes become rarer as the election timeout range widens") {
  const std::int64_t fixed = range(150, 3).split_votes, r155 = range(155, 3).split_votes,
                     r175 = range(175, 3).split_votes, r200 = range(200, 3).split_votes,
                     r300 = range(300, 3).split_votes;
  INFO(fixed << " " << r155 << " " << r175 << " " << r200 << " " << r300);
  CHECK(fixed > 10 * r155);
  CHECK(r155 > 2 * r175);
  CHECK(r175 > r200);
  CHECK(r200 > r300);
}

TEST_CASE(
    "with identical timers and delays fixed timeouts never elect a leader, randomized ones do") {
  // Constant 2 ms delay and no timer noise: the followers hear the last heartbeat at the same
  // instant, time out at the same instant, all stand in the same term and reject each other,
  // forever. Randomized timeouts break the tie every time.
  const Map symmetric{{"delay_min", "2ms"}, {"delay_max", "2ms"}, {"timer_jitter", 0}};
  const Trials fixed = elections("fixed", symmetric, 100, 1);
  CHECK(fixed.trials == 0);
  CHECK(fixed.no_leader == 1);
  const Trials randomized = elections("randomized", symmetric, 100, 1);
  CHECK(randomized.trials == 100);
  CHECK(randomized.no_leader == 0);
}

TEST_CASE("a stable leader serves every command in its service time plus one round trip") {
  ExperimentConfig config;
  config.duration = seconds(10);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 200;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  e.set_workload(w);
  e.add(registry(), "consensus", "fixed");
  const auto r = e.run();
  const auto& s = row(r, "fixed");
  // 1 ms of work plus a round trip at the mean delay (1 + 10 ms) / 2 each way: 12 ms.
  CHECK(s.count(Outcome::ok) == s.requests);
  CHECK(s.p50 == Approx(0.012).epsilon(0.01));
  CHECK(s.max == Approx(0.012).epsilon(0.01));
  CHECK(s.figures.at("leaderless_ms").as_double() == 0);
}

TEST_CASE("after leader crashes commands wait for a new leader, far longer with fixed timeouts") {
  ExperimentConfig config;
  config.duration = seconds(30);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 200;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  e.set_workload(w);
  for (const char* v : {"fixed", "randomized"}) {
    SystemSlot& s = e.add(registry(), "consensus", v);
    for (int t = 2; t < 30; t += 2)
      e.at(seconds(t), [&s] { s.inject("crash_leader", {{"restart_after", "1s"}}); });
  }
  const auto r = e.run();
  const auto& fixed = row(r, "fixed");
  const auto& randomized = row(r, "randomized");
  CHECK(fixed.count(Outcome::timeout) > 1000);
  CHECK(randomized.count(Outcome::timeout) == 0);  // every election well under client_timeout
  CHECK(randomized.p99 > 0.1);                     // but the commands did wait for one
  CHECK(fixed.figures.at("leaderless_ms").as_double() >
        3 * randomized.figures.at("leaderless_ms").as_double());
  CHECK(fixed.completed == fixed.requests);
}

TEST_CASE("the consensus script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("consensus.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 7);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("inconsistent election and delay settings are refused") {
  ExperimentConfig config;
  Experiment e(config);
  REQUIRE_THROWS_WITH(e.add(registry(), "consensus", "randomized",
                            {{"election_timeout_min", "300ms"}, {"election_timeout_max", "150ms"}}),
                      Catch::Contains("election_timeout_max must be at least"));
  REQUIRE_THROWS_WITH(e.add(registry(), "consensus", "fixed", {{"heartbeat", "200ms"}}),
                      Catch::Contains("heartbeat must be shorter"));
  REQUIRE_THROWS_WITH(
      e.add(registry(), "consensus", "fixed", {{"delay_min", "5ms"}, {"delay_max", "1ms"}}),
      Catch::Contains("delay_max must be at least delay_min"));
}
