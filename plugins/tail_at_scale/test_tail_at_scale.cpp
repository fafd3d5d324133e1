#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// `requests` requests at 1000 rps, one system per (variant, params, label).
ExperimentResult run(double requests, const std::vector<hldlab::testing::SystemSpec>& systems,
                     std::uint64_t seed = 1) {
  return run_experiment(hldlab::testing::constant_workload(1000), seconds(requests / 1000), systems,
                        seed);
}

/// |measured - expected| within `sigmas` binomial standard deviations of a proportion over n.
void check_proportion(double measured, double expected, double n, double sigmas = 5) {
  const double sd = std::sqrt(expected * (1 - expected) / n);
  INFO("measured " << measured << ", theory " << expected << ", sd " << sd);
  CHECK(std::abs(measured - expected) <= sigmas * sd);
}

/// Every leaf call takes exactly hop + service: no wait, constant work.
const Map kDeterministic{
    {"slow_probability", 0.0}, {"wait_mean", 0}, {"service_median", "4ms"}, {"service_p99", "4ms"}};

Map with(Map base, const Map& more) {
  for (const auto& [k, v] : more) base[k] = v;
  return base;
}

}  // namespace

TEST_CASE("the share of slow requests is 1 - (1 - p)^N for N = 1, 5, 20 and 100 leaves") {
  for (int n : {1, 5, 20, 100}) {
    for (std::uint64_t seed : {1, 2}) {
      INFO("N = " << n << ", seed " << seed);
      const auto r =
          run(20000, {{"tail_at_scale", "fan_out", {{"leaves", n}, {"depth", 0}}}}, seed);
      const double requests = static_cast<double>(row(r, "fan_out").requests);
      REQUIRE(requests == 19999);
      check_proportion(figure(r, "fan_out", "slow_share"), 1 - std::pow(0.99, n), requests);
      // Each leaf's first copy is slow with p: the leaf calls agree with p too.
      check_proportion(figure(r, "fan_out", "slow_leaf_calls") / (requests * n), 0.01,
                       requests * n);
      // A request is slow exactly when one of its leaves drew the slow wait: at N = 1 the two
      // counts are the same requests.
      if (n == 1)
        CHECK(figure(r, "fan_out", "slow_requests") == figure(r, "fan_out", "slow_leaf_calls"));
      CHECK(figure(r, "fan_out", "slow_requests") <= figure(r, "fan_out", "slow_leaf_calls"));
    }
  }
}

TEST_CASE("with p = 0 no request is slow and with p = 1 every request is") {
  const auto r = run(2000, {{"tail_at_scale", "fan_out", {{"slow_probability", 0.0}}, "never"},
                            {"tail_at_scale", "fan_out", {{"slow_probability", 1.0}}, "always"}});
  CHECK(figure(r, "never", "slow_requests") == 0);
  CHECK(figure(r, "always", "slow_requests") ==
        row(r, "always").requests - row(r, "always").count(Outcome::error));
  CHECK(figure(r, "always", "slow_leaf_calls") == figure(r, "always", "leaf_calls"));
}

TEST_CASE("hedged and tied leaves are slow only when both copies are: p squared") {
  // p = 10 %: a slow first copy (1 s) always passes hedge_after, so the hedge is sent and is
  // slow itself with p; a tied copy that is not slow starts first and cancels the slow one.
  const Map params{{"leaves", 1}, {"depth", 0}, {"slow_probability", 0.1}};
  const auto r = run(20000, {{"tail_at_scale", "fan_out", params},
                             {"tail_at_scale", "hedged", params},
                             {"tail_at_scale", "tied", params}});
  const double requests = static_cast<double>(row(r, "hedged").requests);
  check_proportion(figure(r, "fan_out", "slow_share"), 0.1, requests);
  check_proportion(figure(r, "hedged", "slow_share"), 0.01, requests);
  check_proportion(figure(r, "tied", "slow_share"), 0.01, requests);
  // The first copies draw the same in every variant (common random numbers).
  CHECK(figure(r, "hedged", "slow_leaf_calls") == figure(r, "fan_out", "slow_leaf_calls"));
  // Tied sends two copies of every call; hedged one more for at least every slow first copy.
  CHECK(figure(r, "tied", "extra_copies") == 1.0);
  CHECK(figure(r, "hedged", "extra_copies") * requests >= figure(r, "hedged", "slow_leaf_calls"));
}

TEST_CASE("hedging at the default delay, about the leaf P95, costs about 5 % more calls") {
  const auto r = run(20000, {{"tail_at_scale", "hedged", {{"depth", 0}}}});
  const double p95 = figure(r, "hedged", "leaf_p95");
  INFO("leaf P95 " << p95 * 1000 << " ms, extra copies " << figure(r, "hedged", "extra_copies"));
  CHECK(p95 > 0.013);
  CHECK(p95 < 0.017);
  CHECK(figure(r, "hedged", "extra_copies") > 0.03);
  CHECK(figure(r, "hedged", "extra_copies") < 0.07);
}

TEST_CASE(
    "without slowness a request costs its hops exactly: a chain of 4 hops versus calls in one "
    "process") {
  const Map params = with(kDeterministic, {{"availability", 1.0}});
  const auto r =
      run(1000, {{"tail_at_scale", "fan_out", params}, {"tail_at_scale", "monolith", params}});
  // Chain: 4 hops of 1 ms; fan-out: 1 hop + 4 ms of work. In one process: 4 calls of 1 us.
  CHECK(row(r, "fan_out").mean == Approx(0.009).epsilon(1e-9));
  CHECK(row(r, "monolith").mean == Approx(0.005004).epsilon(1e-9));
  CHECK(row(r, "fan_out").count(Outcome::error) == 0);
}

TEST_CASE("a chain of services answers with probability a^depth, one process with a") {
  const Map params = with(kDeterministic, {{"availability", 0.9}, {"depth", 4}});
  const auto r =
      run(10000, {{"tail_at_scale", "fan_out", params}, {"tail_at_scale", "monolith", params}});
  const double requests = static_cast<double>(row(r, "fan_out").requests);
  const double chain = static_cast<double>(row(r, "fan_out").count(Outcome::error));
  const double one = static_cast<double>(row(r, "monolith").count(Outcome::error));
  check_proportion(chain / requests, 1 - std::pow(0.9, 4), requests);
  check_proportion(one / requests, 0.1, requests);
  // Common random numbers: the monolith fails exactly when the chain's first service does.
  CHECK(one <= chain);
  CHECK(figure(r, "fan_out", "chain_errors") == chain);
}

TEST_CASE("partial answers come at the deadline with the leaves that replied") {
  // Every leaf is slow: nothing replies within 50 ms, so every answer is empty and comes at
  // exactly 4 hops + 50 ms.
  const auto r =
      run(1000, {{"tail_at_scale", "partial", {{"slow_probability", 1.0}, {"availability", 1.0}}}});
  CHECK(figure(r, "partial", "completeness") == 0);
  CHECK(row(r, "partial").mean == Approx(0.054).epsilon(1e-9));
  // Normal traffic: the leaves missing are the slow ones (p = 1 %) and the rare normal call
  // over 50 ms (well under 0.1 %).
  const auto n = run(20000, {{"tail_at_scale", "partial", {{"availability", 1.0}}}});
  const double leaves = figure(n, "partial", "leaf_calls");
  check_proportion(1 - figure(n, "partial", "completeness"), 0.01, leaves, 6);
  CHECK(row(n, "partial").max <= 0.054 * 1.01);
}

TEST_CASE(
    "a dead replica gets calls until the registry cache expires, or until the next health check") {
  // One replica per leaf, 2 leaves, 100 rps (arrivals at 10 ms, 20 ms, ...), the replica dies
  // at 2.505 s. Cached registry (TTL 4.995 s): the client learns it at 4.995 s, so the 249
  // requests of 2.51 .. 4.99 s send 2 calls each to it. Health checks every 0.995 s: it learns
  // at 2.985 s, after the 48 requests of 2.51 .. 2.98 s.
  const Map base{{"leaves", 2}, {"replicas", 1}, {"depth", 0}};
  Workload w = hldlab::testing::constant_workload(100);
  const auto r = run_experiment(
      w, seconds(8),
      {{"tail_at_scale", "fan_out", with(base, {{"registry_ttl", "4.995s"}}), "cached"},
       {"tail_at_scale", "fan_out",
        with(base, {{"discovery", "health_checked"}, {"health_check_interval", "0.995s"}}),
        "checked"}},
      1, [](Experiment& e) {
        hldlab::testing::inject_everywhere(e, milliseconds(2505), "kill_replica", {{"replica", 0}});
      });
  CHECK(figure(r, "cached", "calls_to_dead") == 498);
  CHECK(figure(r, "checked", "calls_to_dead") == 96);
  CHECK(row(r, "cached").metrics.at("calls_to_dead").as_double() == 498);
}

TEST_CASE("the tail_at_scale script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("tail_at_scale.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 10);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("a service P99 below its median and a replica that does not exist are refused") {
  Experiment e;
  REQUIRE_THROWS_WITH(e.add(registry(), "tail_at_scale", "fan_out",
                            {{"service_median", "10ms"}, {"service_p99", "1ms"}}),
                      Catch::Contains("service_p99 must be at least service_median"));
  SystemSlot& s = e.add(registry(), "tail_at_scale", "fan_out", {{"replicas", 2}});
  REQUIRE_THROWS_WITH(s.inject("kill_replica", Map{{"replica", 5}}),
                      Catch::Contains("does not exist"));
}
