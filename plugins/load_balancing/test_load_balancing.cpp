#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// 10 single-worker backends at about 85% load with lognormal service (median 20 ms, p99 400 ms).
ExperimentResult heavy_tail_run(std::uint64_t seed) {
  Workload w = hldlab::testing::poisson_workload(185);
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(20)),
                                      static_cast<double>(milliseconds(400)));
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v :
       {"round_robin", "least_connections", "p2c", "weighted_round_robin", "ip_hash"})
    systems.push_back({"load_balancing", v});
  return run_experiment(w, seconds(300), systems, seed);
}

/// Round robin over 10 backends, 1000 requests per second of 1 ms; backend 3 dies at 20 s.
ExperimentResult kill_run(bool health_checks) {
  return run_experiment(
      constant_workload(1000, milliseconds(1)), seconds(60),
      {{"load_balancing",
        "round_robin",
        {{"health_checks", health_checks},
         {"health_check_interval", "5s"},
         {"unhealthy_after", 2}}}},
      1, [](Experiment& e) {
        e.at(seconds(20), [&e] { e.systems()[0]->inject("kill_backend", {{"backend", 3}}); });
      });
}

/// Mean time in system, in mean service times, of the supermarket model with d choices as the
/// number of servers grows without bound (Mitzenmacher, "The Power of Two Choices in Randomized
/// Load Balancing", 1996): sum over i >= 1 of lambda^((d^i - d) / (d - 1)); for d = 1 each
/// server is an M/M/1 queue: 1 / (1 - lambda).
double supermarket_time(int d, double lambda) {
  if (d == 1) return 1 / (1 - lambda);
  double sum = 0;
  for (int i = 1; i < 64; ++i) {
    const double exponent = (std::pow(d, i) - d) / (d - 1);
    if (exponent > 1e4) break;
    sum += std::pow(lambda, exponent);
  }
  return sum;
}

}  // namespace

TEST_CASE("least connections and P2C beat round robin at P99 under heavy-tailed service times") {
  for (std::uint64_t seed : {1, 2}) {
    const auto r = heavy_tail_run(seed);
    const double rr = row(r, "round_robin").p99;
    const double lc = row(r, "least_connections").p99;
    const double p2c = row(r, "p2c").p99;
    INFO("seed " << seed << ": rr " << rr << " lc " << lc << " p2c " << p2c);
    CHECK(lc < 0.5 * rr);
    CHECK(p2c < 0.6 * rr);
    CHECK(lc <= p2c);
    // Same traffic for every variant.
    CHECK(row(r, "round_robin").requests == row(r, "p2c").requests);
    // With identical speeds, weighted round robin is round robin.
    CHECK(row(r, "weighted_round_robin").p99 == rr);
  }
}

TEST_CASE(
    "the power of d choices matches the supermarket model's mean time in system for d = 1, 2 "
    "and 3") {
  // 100 backends, Poisson arrivals at 90% of their capacity, exponential service of 10 ms.
  // Tolerances: over 30 seeds the measured means spread by 1.5% (d = 1: an M/M/1 queue at 90%
  // load forgets its past slowly) and 0.6% (d = 2, 3); with 100 backends instead of infinitely
  // many, d = 2 and 3 sit about 1.5% above the limit. 8% and 5% are over five spreads away.
  const double lambda = 0.9, service = 0.010;
  for (std::uint64_t seed : {1, 2, 3}) {
    Experiment e({.seed = seed, .duration = seconds(120), .warmup = seconds(20)});
    Workload w = hldlab::testing::poisson_workload(lambda * 100 / service);
    w.service = Distribution::exponential(static_cast<double>(seconds(service)));
    e.set_workload(w);
    const Map params = {{"backends", 100}, {"health_checks", false}};
    e.add(registry(), "load_balancing", "random", params, "d1");
    for (int d : {2, 3}) {
      Map with_choices = params;
      with_choices["choices"] = d;
      e.add(registry(), "load_balancing", "p2c", with_choices, "d" + std::to_string(d));
    }
    const auto r = e.run();
    for (int d : {1, 2, 3}) {
      const double measured = row(r, "d" + std::to_string(d)).mean / service;
      const double theory = supermarket_time(d, lambda);
      INFO("seed " << seed << ", d = " << d << ": " << measured << " service times, theory "
                   << theory);
      CHECK(measured == Approx(theory).epsilon(d == 1 ? 0.08 : 0.05));
    }
  }
  CHECK(supermarket_time(2, 0.9) == Approx(2.6141).epsilon(1e-4));
}

TEST_CASE("random is the power of d choices with d = 1") {
  Workload w = hldlab::testing::poisson_workload(800, milliseconds(10));
  const auto r = run_experiment(
      w, seconds(20),
      {{"load_balancing", "random"}, {"load_balancing", "p2c", {{"choices", 1}}, "p2c_1"}});
  CHECK(row(r, "random").mean == row(r, "p2c_1").mean);
  CHECK(row(r, "random").p99 == row(r, "p2c_1").p99);
  CHECK(figure(r, "random", "max_over_mean_load") == figure(r, "p2c_1", "max_over_mean_load"));
}

TEST_CASE("least connections breaks ties at random instead of in a fixed order") {
  // 100 rps of 1 ms requests: every backend is idle at every arrival, all ten are tied.
  const auto r =
      run_experiment(constant_workload(100, milliseconds(1)), seconds(100),
                     {{"load_balancing", "least_connections"}, {"load_balancing", "round_robin"}});
  // 9 999 requests (the arrival at exactly 100 s is after the end): round robin serves 1000 or
  // 999 each; a random choice among ten serves each backend Binomial(9999, 0.1) requests,
  // 1000 +- 30, never more than 5 standard deviations away.
  const double mean = 999.9;
  CHECK(figure(r, "round_robin", "max_over_mean_load") * mean == Approx(1000));
  const double most = figure(r, "least_connections", "max_over_mean_load") * mean;
  CHECK(most > 1001);
  CHECK(most < 1150);
}

TEST_CASE("a dead backend costs exactly its round-robin share until the health check removes it") {
  const auto r = kill_run(true);
  const auto& rr = row(r, "round_robin");
  // Probes run every 5 s. Killed at 20 s, the probes at 20 s (just after the kill) and 25 s
  // fail, and the second removes it. Arrivals every 1 ms: 5 000 arrivals in [20 s, 25 s), one
  // in ten routed to the dead backend.
  REQUIRE(figure(rr, "refused_by_dead") == 500);
  REQUIRE(figure(rr, "removed_by_check") == 1);
  // Every error is one of those or a request in flight on the backend when it died.
  const auto lost = static_cast<std::int64_t>(figure(rr, "lost_in_flight"));
  REQUIRE(lost <= 1);
  REQUIRE(rr.count(Outcome::error) == 500 + lost);
  REQUIRE(rr.metrics.at("backends_in_rotation").as_double() == 9);
}

TEST_CASE("without health checks the dead backend keeps failing its share to the end") {
  const auto r = kill_run(false);
  // [20 s, 60 s): 40 000 arrivals (the one at exactly 60 s is after the end), a tenth of them.
  REQUIRE(figure(r, "round_robin", "refused_by_dead") == 4000);
}

TEST_CASE("weighted round robin sends work in proportion to backend speed") {
  Experiment e({.duration = seconds(10)});
  e.set_workload(constant_workload(400, milliseconds(1)));
  SystemSlot& wrr = e.add(registry(), "load_balancing", "weighted_round_robin",
                          {{"backends", 3}, {"speeds", List{1.0, 1.0, 2.0}}});
  e.run();
  const Value backends = wrr.call("backends", {});
  const auto a = backends.as_list()[0]["served"].as_int();
  const auto c = backends.as_list()[2]["served"].as_int();
  REQUIRE(a + backends.as_list()[1]["served"].as_int() + c == 3999);
  REQUIRE(std::abs(c - 2 * a) <= 2);
}

TEST_CASE("a slow backend hurts round robin far more than least connections") {
  Workload w = hldlab::testing::poisson_workload(500);
  w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
  const auto r = run_experiment(
      w, seconds(60), {{"load_balancing", "round_robin"}, {"load_balancing", "least_connections"}},
      1, [](Experiment& e) {
        e.at(seconds(10), [&e] {
          for (auto& s : e.systems()) s->inject("slow_backend", {{"backend", 0}, {"factor", 20.0}});
        });
      });
  // 50 rps at 200 ms each is 10x overload on backend 0 for round robin: its queue grows.
  CHECK(row(r, "least_connections").p99 < row(r, "round_robin").p99 / 10);
}

TEST_CASE("the load_balancing script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("load_balancing.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("a backend index that does not exist is refused") {
  Experiment e;
  SystemSlot& s = e.add(registry(), "load_balancing", "round_robin", {{"backends", 3}});
  REQUIRE_THROWS_WITH(s.inject("kill_backend", {{"backend", 7}}),
                      Catch::Contains("backend 7 does not exist"));
  REQUIRE_THROWS_WITH(e.add(registry(), "load_balancing", "p2c", {{"speeds", List{1.0}}}),
                      Catch::Contains("one speed per backend"));
}
