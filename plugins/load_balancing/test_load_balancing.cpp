#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::registry;
using hldlab::testing::row;

namespace {

/// 10 single-worker backends at about 85% load with lognormal service (median 20 ms, p99 400 ms).
ExperimentResult heavy_tail_run(std::uint64_t seed) {
  ExperimentConfig config;
  config.seed = seed;
  config.duration = seconds(300);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 185;
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(20)),
                                      static_cast<double>(milliseconds(400)));
  e.set_workload(w);
  for (const char* v :
       {"round_robin", "least_connections", "p2c", "weighted_round_robin", "ip_hash"})
    e.add(registry(), "load_balancing", v);
  return e.run();
}

ExperimentResult kill_run(bool health_checks) {
  ExperimentConfig config;
  config.duration = seconds(60);
  Experiment e(config);
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 1000;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  e.set_workload(w);
  SystemSlot& rr = e.add(
      registry(), "load_balancing", "round_robin",
      {{"health_checks", health_checks}, {"health_check_interval", "5s"}, {"unhealthy_after", 2}});
  e.at(seconds(20), [&rr] { rr.inject("kill_backend", {{"backend", 3}}); });
  return e.run();
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

TEST_CASE("a dead backend costs exactly its round-robin share until the health check removes it") {
  const auto r = kill_run(true);
  const auto& rr = row(r, "round_robin");
  // Probes run every 5 s. Killed at 20 s, the probes at 20 s (just after the kill) and 25 s
  // fail, and the second removes it. Arrivals every 1 ms: 5 000 arrivals in [20 s, 25 s), one
  // in ten routed to the dead backend.
  REQUIRE(rr.figures.at("refused_by_dead").as_int() == 500);
  REQUIRE(rr.figures.at("removed_by_check").as_int() == 1);
  // Every error is one of those or a request in flight on the backend when it died.
  const auto lost = rr.figures.at("lost_in_flight").as_int();
  REQUIRE(lost <= 1);
  REQUIRE(rr.count(Outcome::error) == 500 + lost);
  REQUIRE(rr.metrics.at("backends_in_rotation").as_double() == 9);
}

TEST_CASE("without health checks the dead backend keeps failing its share to the end") {
  const auto r = kill_run(false);
  // [20 s, 60 s): 40 000 arrivals (the one at exactly 60 s is after the end), a tenth of them.
  REQUIRE(row(r, "round_robin").figures.at("refused_by_dead").as_int() == 4000);
}

TEST_CASE("weighted round robin sends work in proportion to backend speed") {
  ExperimentConfig config;
  config.duration = seconds(10);
  Experiment e(config);
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 400;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  e.set_workload(w);
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
  ExperimentConfig config;
  config.duration = seconds(60);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 500;
  w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
  e.set_workload(w);
  for (const char* v : {"round_robin", "least_connections"}) {
    SystemSlot& s = e.add(registry(), "load_balancing", v);
    e.at(seconds(10), [&s] { s.inject("slow_backend", {{"backend", 0}, {"factor", 20.0}}); });
  }
  const auto r = e.run();
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
  ExperimentConfig config;
  Experiment e(config);
  SystemSlot& s = e.add(registry(), "load_balancing", "round_robin", {{"backends", 3}});
  REQUIRE_THROWS_WITH(s.inject("kill_backend", {{"backend", 7}}),
                      Catch::Contains("backend 7 does not exist"));
  REQUIRE_THROWS_WITH(e.add(registry(), "load_balancing", "p2c", {{"speeds", List{1.0}}}),
                      Catch::Contains("one speed per backend"));
}
