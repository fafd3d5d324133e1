#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// `trials` crash/elect cycles on each system, within `duration` of a 1 rps workload.
ExperimentResult elections(const std::vector<SystemSpec>& systems, std::int64_t trials,
                           Time duration, std::uint64_t seed = 1) {
  return run_experiment(hldlab::testing::poisson_workload(1), duration, systems, seed,
                        [trials](Experiment& e) {
                          for (const auto& s : e.systems())
                            s->call("elections", {{"trials", trials}});
                        });
}

SystemSpec range(int min_ms, int max_ms) {
  return {"consensus",
          min_ms == max_ms ? "fixed" : "randomized",
          {{"election_timeout_min", std::to_string(min_ms) + "ms"},
           {"election_timeout_max", std::to_string(max_ms) + "ms"}},
          "t" + std::to_string(min_ms) + "_" + std::to_string(max_ms)};
}

}  // namespace

TEST_CASE("fixed election timeouts take over ten times longer to elect than 5 ms of randomness") {
  const auto r = elections({range(150, 150), range(150, 155)}, 50, seconds(3600));
  REQUIRE(figure(r, "t150_150", "elections") == 50);
  REQUIRE(figure(r, "t150_155", "elections") == 50);
  CHECK(figure(r, "t150_150", "elect_p50") > 10 * figure(r, "t150_155", "elect_p50"));
  CHECK(figure(r, "t150_150", "split_votes") > 10 * figure(r, "t150_155", "split_votes"));
}

TEST_CASE("an uncontested election takes the first timeout minus the crash phase plus 17 ms") {
  // 3 nodes, 2 ms network each way, 11 ms disk write, no timer noise, equal logs. The crash
  // comes phi ~ U(0, 75 ms) after a heartbeat, which reached both survivors 2 ms later; the
  // first of their timeouts T1, T2 ~ U(150, 300 ms) fires, its RequestVote takes 2 ms, the
  // vote 11 + 2 ms: elected min(T1, T2) - phi + 17 ms, mean 200 - 37.5 + 17 = 179.5 ms.
  // When the timeouts fall within 2 ms of each other (probability 1 - (148/150)^2 = 2.65%) both
  // stand, the votes split and a new round takes about 200 ms more: mean 184.8 ms. Standard
  // deviation ~42 ms, so 2000 trials give the mean to +-1 ms.
  const SystemSpec s{"consensus",
                     "randomized",
                     {{"nodes", 3},
                      {"delay_min", "2ms"},
                      {"delay_max", "2ms"},
                      {"timer_jitter", 0},
                      {"unequal_logs", false}},
                     "three"};
  const auto r = elections({s}, 2000, seconds(3000), 7);
  REQUIRE(figure(r, "three", "elections") == 2000);
  CHECK(figure(r, "three", "elect_mean") == Approx(0.1848).epsilon(0.02));
  const double split_share = figure(r, "three", "split_votes") / 2000;
  CHECK(split_share == Approx(0.0265).margin(0.012));
}

TEST_CASE("no election completes before half the minimum timeout plus one vote round") {
  // The last heartbeat reached the followers at most one heartbeat interval (min / 2 = 75 ms)
  // before the crash; then a RequestVote and its answer: 2 network delays (>= 1.5 ms each) and
  // a disk write (11 ms).
  Experiment e({.duration = seconds(1000)});
  e.set_workload(hldlab::testing::poisson_workload(1));
  SystemSlot& s = e.add(hldlab::testing::registry(), "consensus", "randomized");
  s.call("elections", {{"trials", 500}});
  e.run();
  const List samples = s.call("election_times", {})["samples_ms"].as_list();
  REQUIRE(samples.size() == 500);
  double shortest = 1e9;
  for (const Value& v : samples) shortest = std::min(shortest, v.as_double());
  CHECK(shortest >= 75 + 1.5 + 11 + 1.5);
  CHECK(shortest < 100);  // and 500 trials come close to the bound
}

TEST_CASE("a series whose trial elects nobody stops there and reports no election times") {
  // Constant 2 ms delay and no timer noise: the followers hear the last heartbeat at the same
  // instant, time out at the same instant, all stand in the same term and reject each other,
  // forever. Randomized timeouts break the tie every time.
  const Map symmetric{{"delay_min", "2ms"}, {"delay_max", "2ms"}, {"timer_jitter", 0}};
  Experiment e({.duration = seconds(700)});
  e.set_workload(hldlab::testing::poisson_workload(1));
  SystemSlot& fixed = e.add(hldlab::testing::registry(), "consensus", "fixed", symmetric);
  SystemSlot& randomized = e.add(hldlab::testing::registry(), "consensus", "randomized", symmetric);
  fixed.call("elections", {{"trials", 100}, {"give_up", "60s"}});
  randomized.call("elections", {{"trials", 100}});
  const auto r = e.run();
  CHECK(figure(r, "fixed", "elections") == 0);
  CHECK(figure(r, "fixed", "no_leader") == 1);
  CHECK(row(r, "fixed").figures.count("elect_mean") == 0);
  CHECK(fixed.call("election_times", {})["trials_left"].as_int() == 0);
  CHECK(figure(r, "randomized", "elections") == 100);
  CHECK(figure(r, "randomized", "no_leader") == 0);
}

TEST_CASE("a stable leader serves every command in its service time plus one broadcast") {
  const auto r =
      run_experiment(hldlab::testing::poisson_workload(200), seconds(10), {{"consensus", "fixed"}});
  const auto& s = row(r, "fixed");
  // 1 ms of work, a round trip at the mean delay (2 ms each way) and the followers' disk
  // write (11 ms): 16 ms.
  CHECK(s.count(Outcome::ok) == s.requests);
  CHECK(s.p50 == Approx(0.016).epsilon(0.01));
  CHECK(s.max == Approx(0.016).epsilon(0.01));
  CHECK(figure(s, "leaderless") == 0);
}

TEST_CASE("after leader crashes commands wait for a new leader, far longer with fixed timeouts") {
  const auto r =
      run_experiment(hldlab::testing::poisson_workload(200), seconds(30),
                     {{"consensus", "fixed"}, {"consensus", "randomized"}}, 1, [](Experiment& e) {
                       for (const auto& s : e.systems())
                         for (int t = 2; t < 30; t += 2)
                           e.at(seconds(t), [slot = s.get()] {
                             slot->inject("crash_leader", {{"restart_after", "1s"}});
                           });
                     });
  const auto& fixed = row(r, "fixed");
  const auto& randomized = row(r, "randomized");
  CHECK(fixed.count(Outcome::timeout) > 100);
  CHECK(randomized.count(Outcome::timeout) == 0);  // every election well under client_timeout
  CHECK(randomized.p99 > 0.1);                     // but the commands did wait for one
  CHECK(figure(fixed, "leaderless") > 3 * figure(randomized, "leaderless"));
  CHECK(fixed.completed == fixed.requests);
}

TEST_CASE("the consensus script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("consensus.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 8);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("inconsistent election and delay settings are refused") {
  Experiment e;
  const auto& lessons = hldlab::testing::registry();
  REQUIRE_THROWS_WITH(e.add(lessons, "consensus", "randomized",
                            {{"election_timeout_min", "300ms"}, {"election_timeout_max", "150ms"}}),
                      Catch::Contains("election_timeout_max must be at least"));
  REQUIRE_THROWS_WITH(e.add(lessons, "consensus", "fixed", {{"heartbeat", "200ms"}}),
                      Catch::Contains("heartbeat must be shorter"));
  REQUIRE_THROWS_WITH(
      e.add(lessons, "consensus", "fixed", {{"delay_min", "5ms"}, {"delay_max", "1ms"}}),
      Catch::Contains("delay_max must be at least delay_min"));
}
