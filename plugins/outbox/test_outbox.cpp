#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"write_then_publish", "publish_then_write", "transactional_outbox",
                                 "cdc"};
const char* const kFixes[] = {"transactional_outbox", "cdc"};

/// Orders at a constant `rps` from 1/rps up to `traffic`, each transaction taking `service`;
/// every variant with `params`; `fault` with `fault_params` at `fault_at` (if any).
ExperimentResult constant_run(double rps, Time traffic, Time service, const Map& params,
                              const std::string& fault = "", const Map& fault_params = {},
                              Time fault_at = 0) {
  Workload w = hldlab::testing::constant_workload(0, service);
  w.arrivals.spikes.push_back({0, traffic, rps});
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"outbox", v, params});
  return hldlab::testing::run_experiment(w, traffic + seconds(1), systems, 1, [&](Experiment& e) {
    if (!fault.empty()) hldlab::testing::inject_everywhere(e, fault_at, fault, fault_params);
  });
}

void check_consistent(const SystemResult& s, double orders) {
  CHECK(figure(s, "committed") == orders);
  CHECK(figure(s, "events") == orders);
  CHECK(figure(s, "inconsistent") == 0);
  CHECK(figure(s, "lost_events") == 0);
  CHECK(figure(s, "phantom_events") == 0);
}

}  // namespace

TEST_CASE("without faults every variant commits every order and publishes its event once") {
  const auto r = constant_run(100, seconds(2), milliseconds(5), {});
  for (const char* v : kVariants) {
    INFO(v);
    const auto& s = row(r, v);
    REQUIRE(s.requests == 200);
    CHECK(s.count(Outcome::ok) == 200);
    check_consistent(s, 200);
    CHECK(figure(s, "duplicates") == 0);
  }
  // The user waits for the transaction (5 ms), plus the publish (1 ms) in the naive variants.
  CHECK(row(r, "write_then_publish").max == Approx(0.006).epsilon(0.01));
  CHECK(row(r, "publish_then_write").max == Approx(0.006).epsilon(0.01));
  CHECK(row(r, "transactional_outbox").max == Approx(0.005).epsilon(0.01));
  // CDC: the commit shows in the log 10 ms later, the publish takes 1 ms.
  CHECK(figure(r, "cdc", "event_delay_p99") == Approx(0.011).epsilon(0.01));
}

TEST_CASE(
    "a service crash loses exactly the events of the orders committed and not yet published, "
    "and makes a phantom of exactly those published and not yet committed") {
  // Orders every 1 ms from 1 ms; transactions take 5 ms, publishes 20 ms. The service crashes
  // at 100.5 ms (back at 1.1005 s).
  //   write_then_publish: orders 76..95 ms committed (at 81..100 ms) and still publishing: 20
  //   lost events. publish_then_write: orders 76..80 ms published (at 96..100 ms) with their
  //   transaction still running: 5 phantoms. Outbox and CDC: a transaction is all or nothing.
  const auto r = constant_run(1000, milliseconds(200), milliseconds(5), {{"publish_time", "20ms"}},
                              "crash_service", {{"duration", "1s"}}, microseconds(100500));
  const auto& w = row(r, "write_then_publish");
  REQUIRE(w.requests == 200);
  CHECK(figure(w, "lost_events") == 20);
  CHECK(figure(w, "inconsistent") == 20);
  CHECK(figure(w, "phantom_events") == 0);
  const auto& p = row(r, "publish_then_write");
  CHECK(figure(p, "phantom_events") == 5);
  CHECK(figure(p, "inconsistent") == 5);
  CHECK(figure(p, "lost_events") == 0);
  for (const char* v : kFixes) {
    INFO(v);
    const auto& s = row(r, v);
    CHECK(figure(s, "inconsistent") == 0);
    CHECK(figure(s, "committed") == figure(s, "events"));
    // Committed before the crash: orders 1..95 ms (transactions end at 6..100 ms).
    CHECK(figure(s, "committed") == 95);
  }
  // Every order from 1 ms to 100 ms was in progress or done: those not done fail, and every
  // order arriving while the service is down (101..200 ms) is refused.
  for (const char* v : kVariants) {
    INFO(v);
    CHECK(row(r, v).count(Outcome::error) == 200 - row(r, v).count(Outcome::ok));
    CHECK(row(r, v).count(Outcome::error) >= 100);
  }
}

TEST_CASE(
    "failed commits: publish-then-write leaves exactly one phantom per failure, the others "
    "none") {
  // Every commit fails from 0.5 s for 0.3 s: the orders whose transaction ends in
  // [0.5 s, 0.8 s), 30 of them (arrivals every 10 ms, 5 ms transactions, 1 ms publishes).
  const auto r = constant_run(100, seconds(2), milliseconds(5), {}, "db_errors",
                              {{"rate", 1.0}, {"duration", "300ms"}}, milliseconds(500));
  const auto& p = row(r, "publish_then_write");
  CHECK(figure(p, "phantom_events") == 30);
  CHECK(p.count(Outcome::error) == 30);
  for (const char* v : {"write_then_publish", "transactional_outbox", "cdc"}) {
    INFO(v);
    const auto& s = row(r, v);
    check_consistent(s, 170);
    CHECK(s.count(Outcome::error) == 30);
  }
}

TEST_CASE(
    "a broker outage loses the event of every order that commits during it in "
    "write-then-publish; the outbox and CDC publish them late") {
  // The broker is down from 0.5 s for 0.3 s: the 30 orders whose publish starts then (commits
  // at 0.505 .. 0.795 s) lose their event; publish-then-write refuses those 30 orders instead.
  const auto r = constant_run(100, seconds(2), milliseconds(5), {}, "broker_down",
                              {{"duration", "300ms"}}, milliseconds(500));
  const auto& w = row(r, "write_then_publish");
  CHECK(figure(w, "lost_events") == 30);
  CHECK(w.count(Outcome::error) == 30);
  const auto& p = row(r, "publish_then_write");
  check_consistent(p, 170);
  CHECK(p.count(Outcome::error) == 30);
  for (const char* v : kFixes) {
    INFO(v);
    const auto& s = row(r, v);
    check_consistent(s, 200);
    CHECK(s.count(Outcome::error) == 0);
    CHECK(figure(s, "duplicates") == 0);
  }
  // The first order of the outage waits for the broker: about 0.3 s.
  CHECK(figure(r, "transactional_outbox", "event_delay_p99") > 0.25);
  CHECK(figure(r, "cdc", "event_delay_p99") > 0.25);
}

TEST_CASE(
    "a relay crash with k rows published but not yet marked sent publishes exactly those k "
    "again; CDC republishes exactly what it published since its last offset flush") {
  // 50 orders at 1..50 ms commit at 6..55 ms. The relay's first poll, at 100 ms, takes the 50
  // rows and publishes one per millisecond; it crashes at 120.5 ms with 20 published and no
  // UPDATE yet. Back at 1.1205 s, its poll at 1.2 s publishes the 50 again: 20 duplicates.
  // The CDC connector published all 50 by 66 ms; its first offset flush would be at 1 s, so
  // restarting after its crash at 120.5 ms it republishes all 50.
  const auto r = constant_run(1000, milliseconds(50), milliseconds(5), {}, "crash_relay",
                              {{"duration", "1s"}}, microseconds(120500));
  const auto& outbox = row(r, "transactional_outbox");
  REQUIRE(outbox.requests == 50);
  check_consistent(outbox, 50);
  CHECK(figure(outbox, "duplicates") == 20);
  const auto& cdc = row(r, "cdc");
  check_consistent(cdc, 50);
  CHECK(figure(cdc, "duplicates") == 50);
  for (const char* v : {"write_then_publish", "publish_then_write"}) {
    INFO(v);
    CHECK(figure(r, v, "duplicates") == 0);  // no relay to crash
  }
}

TEST_CASE("CDC republishes only what came after its last offset flush") {
  // Orders every 10 ms for 2 s; the connector records its position every second (1 s, 2 s).
  // It crashes at 1.5005 s: the orders published after the flush at 1 s (arrivals 0.99 ..
  // 1.48 s: commits 0.995 .. 1.485 s, published 11 ms later, after 1.0 s) are 50: exactly the
  // duplicates once it is back.
  const auto r = constant_run(100, seconds(2), milliseconds(5), {}, "crash_relay",
                              {{"duration", "100ms"}}, microseconds(1500500));
  CHECK(figure(r, "cdc", "duplicates") == 50);
  check_consistent(row(r, "cdc"), 200);
}

TEST_CASE(
    "the outbox relay's event delay is the wait for its next poll: uniform over the poll "
    "interval") {
  // 20 orders/s, Poisson: a commit falls anywhere in the 100 ms between polls, so the delay is
  // uniform(0, 100 ms) + 1 ms (the publish; batches hold one row or two). Median 51 ms; the
  // sample median of n = 2400 has a standard deviation of 100 / (2 sqrt n) = 1.0 ms, so 45..57
  // is six of them (with the histogram's 0.8%). CDC's delay is cdc_lag + publish, 11 ms.
  for (std::uint64_t seed : {1, 2}) {
    Workload w = hldlab::testing::poisson_workload(20, milliseconds(5));
    const auto r = hldlab::testing::run_experiment(
        w, seconds(120), {{"outbox", "transactional_outbox"}, {"outbox", "cdc"}}, seed);
    INFO("seed " << seed);
    const double median = figure(r, "transactional_outbox", "event_delay_p50");
    CHECK(median > 0.045);
    CHECK(median < 0.057);
    CHECK(figure(r, "transactional_outbox", "event_delay_p99") > 0.095);
    CHECK(figure(r, "transactional_outbox", "event_delay_p99") < 0.104);
    CHECK(figure(r, "cdc", "event_delay_p50") == Approx(0.011).epsilon(0.01));
  }
}

TEST_CASE("after a warm-up the figures count the orders that arrived after it") {
  Workload w = hldlab::testing::constant_workload(0, milliseconds(5));
  w.arrivals.spikes.push_back({0, seconds(4), 10});
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"outbox", v, {}});
  const auto r = hldlab::testing::run_experiment(
      w, {.duration = seconds(4.05), .warmup = seconds(2)}, systems);
  for (const char* v : kVariants) {
    INFO(v);
    const auto& s = row(r, v);
    check_consistent(s, static_cast<double>(s.requests));
  }
}

TEST_CASE("the outbox script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("outbox.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}
