#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"no_compensation", "two_phase_commit", "orchestration",
                                 "choreography"};

std::vector<hldlab::testing::SystemSpec> every_variant(const Map& params) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"saga", v, params});
  return systems;
}

/// Every system gets `fault` at `t`.
std::function<void(Experiment&)> inject_at(Time t, const std::string& fault, const Map& params) {
  return [=](Experiment& e) {
    for (const auto& s : e.systems())
      e.at(t, [&slot = *s, fault, params] { slot.inject(fault, params); });
  };
}

/// 100 orders per second (Poisson) for 60 s, steps lognormal (median 20 ms, P99 200 ms); a
/// share `rate` of the orders fails at `step`.
ExperimentResult failing_run(int step, double rate, std::uint64_t seed) {
  Workload w = hldlab::testing::poisson_workload(100);
  w.service = Distribution::lognormal(static_cast<double>(milliseconds(20)),
                                      static_cast<double>(milliseconds(200)));
  return run_experiment(w, seconds(60), every_variant({{"fail_step", step}, {"fail_rate", rate}}),
                        seed);
}

}  // namespace

TEST_CASE(
    "a failure at step k leaves exactly the failed orders inconsistent without "
    "compensation, and none with a saga or 2PC") {
  for (int k = 0; k < 4; ++k) {
    const auto r = failing_run(k, 0.2, 11);
    const double failed = figure(r, "orchestration", "failed");
    INFO("step " << k << ": " << failed << " failed orders");
    const auto requests = static_cast<double>(row(r, "orchestration").requests);
    // The same orders fail in every variant (the failure is a function of the order), about
    // 20% of them (binomial: within 4 standard deviations).
    for (const char* v : kVariants) CHECK(figure(r, v, "failed") == failed);
    CHECK(std::abs(failed - 0.2 * requests) < 4 * std::sqrt(requests * 0.2 * 0.8));
    // Failing the very first step leaves nothing behind; any later step leaves steps 0..k-1.
    CHECK(figure(r, "no_compensation", "inconsistent") == (k == 0 ? 0 : failed));
    CHECK(figure(r, "no_compensation", "compensations") == 0);
    for (const char* v : {"orchestration", "choreography", "two_phase_commit"})
      CHECK(figure(r, v, "inconsistent") == 0);
    // A saga compensates the k steps before the failed one, in reverse order.
    CHECK(figure(r, "orchestration", "compensations") == k * failed);
    CHECK(figure(r, "choreography", "compensations") == k * failed);
    CHECK(figure(r, "two_phase_commit", "compensations") == 0);
    CHECK(row(r, "orchestration").count(Outcome::error) == failed);
    CHECK(row(r, "orchestration").count(Outcome::ok) == requests - failed);
  }
}

TEST_CASE(
    "when every order fails at payment, every order without compensation is left "
    "half done") {
  const auto r = failing_run(2, 1.0, 5);
  const auto n = static_cast<double>(row(r, "no_compensation").requests);
  REQUIRE(figure(r, "no_compensation", "failed") == n);
  REQUIRE(figure(r, "no_compensation", "inconsistent") == n);
  REQUIRE(figure(r, "orchestration", "compensations") == 2 * n);
  REQUIRE(figure(r, "orchestration", "inconsistent") == 0);
}

TEST_CASE("choreography sends half the messages of orchestration and finishes sooner") {
  const auto r = failing_run(-1, 0.0, 3);
  const auto n = static_cast<double>(row(r, "orchestration").requests);
  REQUIRE(figure(r, "orchestration", "messages") == 8 * n);  // call + reply per step
  REQUIRE(figure(r, "choreography", "messages") == 4 * n);   // one event per step
  // Every order: 4 x (service + hop) instead of 4 x (service + 2 hops).
  REQUIRE(row(r, "choreography").p50 < row(r, "orchestration").p50);
}

TEST_CASE(
    "a 2PC coordinator crash leaves the prepared participants blocked until it restarts; "
    "a saga holds no locks") {
  // 100 orders per second exactly (from 10 ms), every step 50 ms, 1 ms hops, no failures; the
  // coordinator crashes at 10.0005 s for 5 s.
  const auto r =
      run_experiment(hldlab::testing::constant_workload(100, milliseconds(50)), seconds(30),
                     every_variant({{"fail_rate", 0.0}, {"hop", "1ms"}}), 1,
                     inject_at(microseconds(10'000'500), "crash_coordinator", {{"for", "5s"}}));
  // Votes come back 52 ms after an order starts. Orders started at 9.95, 9.96, ..., 10.00 s
  // vote into the dead coordinator: 6 orders x 4 participants.
  CHECK(figure(r, "two_phase_commit", "blocked_participants") == 24);
  // Each stays locked from its vote (start + 52 ms) to the restart at 15.0005 s.
  double expected = 0;
  for (int i = 0; i < 6; ++i) expected += 4 * (15.0005 - (9.95 + 0.01 * i + 0.052));
  CHECK(figure(r, "two_phase_commit", "blocked_s") == Approx(expected).epsilon(1e-9));
  // Presumed abort: the six in-doubt orders fail, all or nothing.
  CHECK(figure(r, "two_phase_commit", "failed") == 6);
  CHECK(figure(r, "two_phase_commit", "inconsistent") == 0);
  // Orders arriving at 10.01 .. 15.00 s find no coordinator.
  for (const char* v : {"two_phase_commit", "orchestration", "no_compensation"})
    CHECK(row(r, v).count(Outcome::rejected) == 500);
  // The orchestrator resumes its sagas from its log: late, but no order fails or is locked.
  CHECK(figure(r, "orchestration", "blocked_participants") == 0);
  CHECK(figure(r, "orchestration", "failed") == 0);
  CHECK(row(r, "orchestration").max > 4.9);
  // Choreography has no coordinator to crash.
  CHECK(row(r, "choreography").count(Outcome::rejected) == 0);
  CHECK(row(r, "choreography").count(Outcome::ok) == row(r, "choreography").requests);
}

TEST_CASE("the fail_step fault makes shipping fail from the moment it is injected") {
  const auto r = run_experiment(hldlab::testing::constant_workload(100, milliseconds(10)),
                                seconds(60), every_variant({{"fail_rate", 0.0}}), 1,
                                inject_at(seconds(30), "fail_step", {{"step", 3}, {"rate", 0.5}}));
  const double failed = figure(r, "orchestration", "failed");
  // Orders arriving from 30 s on (3000 of them) fail at shipping half the time (binomial:
  // within 4 standard deviations).
  CHECK(std::abs(failed - 1500) < 4 * std::sqrt(3000 * 0.25));
  for (const char* v : kVariants) CHECK(figure(r, v, "failed") == failed);
  CHECK(figure(r, "no_compensation", "inconsistent") == failed);
  CHECK(figure(r, "orchestration", "compensations") == 3 * failed);
  CHECK(figure(r, "choreography", "compensations") == 3 * failed);
  CHECK(figure(r, "orchestration", "inconsistent") == 0);
}

TEST_CASE("after a warm-up the figures count only the orders that arrived after it") {
  // Every order fails at payment; the warm-up ends at 10 s of 20 s.
  Experiment e({.duration = seconds(20), .warmup = seconds(10)});
  e.set_workload(hldlab::testing::constant_workload(100, milliseconds(10)));
  for (const char* v : kVariants) e.add(registry(), "saga", v, {{"fail_rate", 1.0}});
  const auto r = e.run();
  const auto n = static_cast<double>(row(r, "orchestration").requests);
  REQUIRE(n == 1000);
  CHECK(figure(r, "orchestration", "failed") == n);
  CHECK(figure(r, "orchestration", "compensations") == 2 * n);
  CHECK(figure(r, "orchestration", "messages") == 2 * 5 * n);  // 3 steps forward, 2 back
  CHECK(figure(r, "no_compensation", "inconsistent") == n);
}

TEST_CASE("the saga script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("saga.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("saga refuses a step that does not exist") {
  Experiment e;
  REQUIRE_THROWS(e.add(registry(), "saga", "orchestration", {{"fail_step", 4}}));
  SystemSlot& s = e.add(registry(), "saga", "orchestration");
  REQUIRE_THROWS(s.inject("fail_step", {{"step", 7}, {"rate", 0.5}}));
}
