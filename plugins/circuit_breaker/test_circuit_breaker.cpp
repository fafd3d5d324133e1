#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

constexpr double kInterval = 0.010;  // 100 rps: constant arrivals at 10 ms, 20 ms, ...
constexpr double kService = 0.005;   // half an interval: no event ever ties with an arrival

/// 100 rps of constant arrivals, all with key 0 (all call downstream 0), 5 ms per call.
Workload one_downstream() {
  return hldlab::testing::constant_workload(100, seconds(kService), 1);
}

/// The first arrival after time t (never exactly at t in these tests).
double next_arrival(double t) {
  return std::ceil(t / kInterval) * kInterval;
}

/// The breaker's transitions as (to, at seconds).
std::vector<std::pair<std::string, double>> transitions(SystemSlot& s) {
  std::vector<std::pair<std::string, double>> out;
  const Value list = s.call("transitions", {});
  for (const Value& t : list.as_list()) out.emplace_back(t["to"].as_string(), t["at"].as_double());
  return out;
}

double availability(const Value& before, const Value& after, int d) {
  const std::string k = std::to_string(d);
  const auto ok = after["ok_" + k].as_int() - before["ok_" + k].as_int();
  const auto failed = after["failed_" + k].as_int() - before["failed_" + k].as_int();
  return static_cast<double>(ok) / static_cast<double>(ok + failed);
}

}  // namespace

TEST_CASE(
    "a failing downstream drives the breaker closed, open, half-open, open ... closed at "
    "exactly the configured moments") {
  Experiment e({.duration = seconds(40)});
  e.set_workload(one_downstream());
  const int window = 20, probes = 3;
  const double failure_rate = 0.5, open_timeout = 5, fault = 10, recover = 30;
  SystemSlot& b = e.add(registry(), "circuit_breaker", "breaker",
                        {{"window", window},
                         {"min_calls", 10},
                         {"failure_rate", failure_rate},
                         {"open_timeout", "5s"},
                         {"probes", probes}});
  SystemSlot& none = e.add(registry(), "circuit_breaker", "none");
  e.at(seconds(fault), [&] {
    for (SystemSlot* s : {&b, &none}) s->inject("downstream_errors", {{"rate", 1.0}});
  });
  e.at(seconds(recover), [&] {
    for (SystemSlot* s : {&b, &none}) s->inject("downstream_recover", {});
  });
  const auto r = e.run();
  const auto t = transitions(b);
  REQUIRE(t.size() >= 4);
  // The window is full of successes at the fault (which comes before the arrival at 10 s): it
  // opens on the 10th failure (half the window), one service time after that call starts.
  const int needed = static_cast<int>(failure_rate * window);
  REQUIRE(t[0].first == "open");
  REQUIRE(t[0].second == Approx(fault + (needed - 1) * kInterval + kService).margin(1e-9));
  std::size_t i = 1;
  // Each half-open comes exactly open_timeout after the open; while the downstream is broken,
  // its first probe (the next arrival) fails one service time later and reopens the breaker.
  for (; i + 1 < t.size(); i += 2) {
    REQUIRE(t[i].first == "half_open");
    REQUIRE(t[i].second == Approx(t[i - 1].second + open_timeout).margin(1e-9));
    if (t[i].second < recover) {
      REQUIRE(t[i + 1].first == "open");
      REQUIRE(t[i + 1].second == Approx(next_arrival(t[i].second) + kService).margin(1e-9));
    } else {
      break;
    }
  }
  // The first half-open after the recovery: `probes` probes succeed one after another.
  REQUIRE(i + 2 == t.size());
  REQUIRE(t[i].second > recover);
  REQUIRE(t[i + 1].first == "closed");
  const double last_probe = next_arrival(t[i].second) + (probes - 1) * kInterval;
  REQUIRE(t[i + 1].second == Approx(last_probe + kService).margin(1e-9));
  // Open from 10.1 s to 30.2 s except for the probes: about 2000 calls never made.
  const auto saved = row(r, "none").figures.at("downstream_calls").as_int() -
                     row(r, "breaker").figures.at("downstream_calls").as_int();
  REQUIRE(saved == row(r, "breaker").figures.at("short_circuited").as_int());
  CHECK(saved > 1900);
  REQUIRE(row(r, "breaker").metrics.at("state{downstream=0}").as_double() == 0);  // closed
  REQUIRE(row(r, "breaker").metrics.at("transitions").as_double() == static_cast<double>(t.size()));
}

TEST_CASE(
    "a hanging downstream exhausts a shared pool and takes the healthy downstream down; a "
    "bulkhead confines it") {
  Experiment e({.duration = seconds(40)});
  Workload w;
  w.arrivals.rps = 200;
  w.keys = KeyDistribution::uniform(1000);
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(20)),
                                      static_cast<double>(milliseconds(100)));
  e.set_workload(w);
  std::vector<SystemSlot*> systems;
  for (const char* v : {"none", "breaker", "bulkhead", "breaker_bulkhead"})
    systems.push_back(&e.add(registry(), "circuit_breaker", v, {{"pool", 40}}));
  std::map<std::string, Value> at11, at39;
  e.at(seconds(10), [&] {
    for (SystemSlot* s : systems) s->inject("downstream_hang", {{"downstream", 0}});
  });
  e.at(seconds(11), [&] {
    for (SystemSlot* s : systems) at11[s->label()] = s->call("stats", {});
  });
  e.at(seconds(39), [&] {
    for (SystemSlot* s : systems) at39[s->label()] = s->call("stats", {});
  });
  e.run();
  // One second into the hang every shared connection is stuck on downstream 0 ...
  REQUIRE(at11["none"]["in_use"].as_int() == 40);
  // ... and with a bulkhead only downstream 0's half of them.
  CHECK(at11["bulkhead"]["in_use"].as_int() >= 20);
  CHECK(at11["bulkhead"]["in_use"].as_int() < 30);
  const double none = availability(at11["none"], at39["none"], 1);
  const double bulkhead = availability(at11["bulkhead"], at39["bulkhead"], 1);
  const double both = availability(at11["breaker_bulkhead"], at39["breaker_bulkhead"], 1);
  INFO("healthy downstream availability: none " << none << ", bulkhead " << bulkhead);
  CHECK(none < 0.05);
  CHECK(bulkhead > 0.99);
  CHECK(both > 0.99);
  // Within the 30 s timeout no call has failed yet: the breaker alone cannot have opened.
  CHECK(availability(at11["breaker"], at39["breaker"], 1) < 0.05);
}

TEST_CASE(
    "a breaker opens on hung calls only when they time out, and half-open risks only its "
    "probes") {
  Experiment e({.duration = seconds(100)});
  e.set_workload(one_downstream());
  const int probes = 3;
  // A timeout of 30.005 s keeps every timeout between two arrivals.
  const double hang = 20, timeout = 30.005, open_timeout = 5, recover = 60;
  SystemSlot& s = e.add(
      registry(), "circuit_breaker", "breaker_bulkhead",
      {{"pool", 40}, {"window", 20}, {"min_calls", 10}, {"probes", probes}, {"timeout", timeout}});
  Value at56;
  e.at(seconds(hang), [&] { s.inject("downstream_hang", {}); });
  e.at(seconds(56), [&] { at56 = s.call("stats", {}); });
  e.at(seconds(recover), [&] { s.inject("downstream_recover", {}); });
  const auto r = e.run();
  const auto t = transitions(s);
  REQUIRE(t.size() == 5);
  // The 10th hung call (started at 20.09 s) times out 30 s later: half the window has failed.
  REQUIRE(t[0].first == "open");
  REQUIRE(t[0].second == Approx(hang + 9 * kInterval + timeout).margin(1e-9));
  REQUIRE(t[1].first == "half_open");
  REQUIRE(t[1].second == Approx(t[0].second + open_timeout).margin(1e-9));
  // Half-open with a downstream still hanging: the `probes` probes hold connections, and so do
  // the calls that took the connections freed by the first timeouts (50.005 s) before the
  // breaker opened (50.095 s): the arrivals at 50.01 ... 50.09 s. Nothing else.
  const int late_calls =
      static_cast<int>(std::lround((t[0].second - (hang + timeout)) / kInterval));
  REQUIRE(late_calls == 9);
  REQUIRE(at56["in_use"].as_int() == probes + late_calls);
  REQUIRE(at56["state_0"].as_string() == "half_open");
  // The first probe (next arrival after the half-open) times out and reopens the breaker.
  REQUIRE(t[2].first == "open");
  REQUIRE(t[2].second == Approx(next_arrival(t[1].second) + timeout).margin(1e-9));
  REQUIRE(t[3].first == "half_open");
  REQUIRE(t[3].second == Approx(t[2].second + open_timeout).margin(1e-9));
  REQUIRE(t[4].first == "closed");  // recovered meanwhile: the probes succeed
  REQUIRE(t[4].second ==
          Approx(next_arrival(t[3].second) + (probes - 1) * kInterval + kService).margin(1e-9));
  // The bulkhead's 20 connections for downstream 0 filled within 0.2 s of the hang and were
  // all refused until the first timeouts: pool_full counts those refusals.
  CHECK(row(r, "breaker_bulkhead").figures.at("pool_full").as_int() > 2900);
}

TEST_CASE("every variant without an open breaker meets the same injected errors") {
  // Light load (no pool ever fills), 30% of the calls to downstream 0 failing from 1 s on: the
  // errors are drawn per request, so the variants that make every call fail the same ones.
  const auto r = hldlab::testing::run_experiment(
      hldlab::testing::poisson_workload(200, milliseconds(5)), seconds(20),
      {{"circuit_breaker", "none"}, {"circuit_breaker", "bulkhead"}}, 1, [](Experiment& e) {
        e.at(seconds(1), [&e] {
          for (auto& s : e.systems()) s->inject("downstream_errors", {{"rate", 0.3}});
        });
      });
  const auto errors = row(r, "none").count(Outcome::error);
  CHECK(errors == row(r, "bulkhead").count(Outcome::error));
  // About 0.3 x 100 rps x 19 s = 570 of the downstream-0 calls.
  CHECK(errors > 450);
  CHECK(errors < 700);
}

TEST_CASE("the circuit_breaker script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("circuit_breaker.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 6);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("impossible breaker or bulkhead settings are refused with a clear message") {
  Experiment e;
  REQUIRE_THROWS_WITH(e.add(registry(), "circuit_breaker", "bulkhead", {{"pool", 1}}),
                      Catch::Contains("at least 2 connections"));
  REQUIRE_THROWS_WITH(
      e.add(registry(), "circuit_breaker", "breaker", {{"window", 5}, {"min_calls", 10}}),
      Catch::Contains("cannot exceed the window"));
}
