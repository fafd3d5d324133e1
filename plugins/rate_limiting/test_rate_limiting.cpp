#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// One client, idle except for a constant spike of `rps` in [from, to): arrivals every 1/rps
/// from `from` + 1/rps to `to` inclusive (the runtime's constant arrivals), 1 ms of service each.
Workload spike(Time from, Time to, double rps, std::uint32_t clients = 1) {
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 0;
  w.arrivals.spikes.push_back({from, to, rps});
  w.clients = clients;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  return w;
}

}  // namespace

TEST_CASE(
    "a fixed window lets twice the limit through across a window boundary, a sliding log "
    "never more than the limit") {
  // limit 100 per 1 s; one client sends 1000 rps from 0.5 s to 2 s: arrivals at 501 ms, 502 ms,
  // ..., 2000 ms. The fixed window accepts 501..600 ms (window 0) and 1000..1099 ms (window 1):
  // 200 requests inside 0.6 s. The sliding log accepts 501..600 ms, then nothing until the first
  // of those leaves the log at 1501 ms.
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : {"none", "fixed_window", "sliding_log", "sliding_window"})
    systems.push_back({"rate_limiting", v, {{"limit", 100}, {"window", "1s"}}});
  const auto r = run_experiment(spike(milliseconds(500), seconds(2), 1000), seconds(3), systems);
  const std::int64_t limit = 100;
  REQUIRE(row(r, "none").requests == 1500);
  REQUIRE(figure(r, "none", "accepted") == 1500);
  REQUIRE(figure(r, "fixed_window", "peak_per_window") == 2 * limit);
  REQUIRE(figure(r, "fixed_window", "accepted") == 2 * limit + 1);  // + the arrival at 2000 ms
  REQUIRE(row(r, "fixed_window").count(Outcome::rejected) == 1500 - 2 * limit - 1);
  REQUIRE(figure(r, "sliding_log", "peak_per_window") == limit);
  REQUIRE(figure(r, "sliding_log", "accepted") == 2 * limit);
  // The sliding window counter assumes the previous window's requests were spread evenly: it
  // overshoots the limit on this adversarial pattern, but by well under the fixed window's 2x.
  const auto approx = figure(r, "sliding_window", "peak_per_window");
  CHECK(approx > limit);
  CHECK(approx < 2 * limit * 8 / 10);
}

TEST_CASE(
    "a token bucket passes exactly its burst, then exactly one request per refill "
    "interval, and GCRA decides identically") {
  // burst 20, rate 10/s (one token per 100 ms). 1000 rps from 1 s to 3 s: arrivals at 1001 ms
  // ... 3000 ms. The full bucket passes 20 at once; afterwards a token is ready at
  // 1001 + 100 k ms, k = 1..19 (2901 ms); the next one (3001 ms) comes too late.
  Experiment e({.duration = seconds(6)});
  e.set_workload(spike(seconds(1), seconds(3), 1000));
  const Map params{{"limit", 10}, {"window", "1s"}, {"burst", 20}};
  SystemSlot& bucket = e.add(registry(), "rate_limiting", "token_bucket", params);
  SystemSlot& gcra = e.add(registry(), "rate_limiting", "gcra", params);
  Value early, at4, at6;
  Value gcra_at4;
  e.at(milliseconds(1020.5), [&] { early = bucket.call("headers", {{"client", 0}}); });
  e.at(seconds(4), [&] {
    at4 = bucket.call("headers", {{"client", 0}});
    gcra_at4 = gcra.call("headers", {{"client", 0}});
  });
  e.at(seconds(5.5), [&] { at6 = bucket.call("headers", {{"client", 0}}); });
  const auto r = e.run();
  const std::int64_t burst = 20, refills = (3000 - 1001) / 100;
  REQUIRE(figure(r, "token_bucket", "accepted") == burst + refills);
  REQUIRE(figure(r, "gcra", "accepted") == burst + refills);
  REQUIRE(row(r, "token_bucket").count(Outcome::rejected) == 2000 - burst - refills);
  // Right after the burst: empty, 19.5 ms of refill banked, the next token in 80.5 ms.
  REQUIRE(early["remaining"].as_int() == 0);
  REQUIRE(early["retry_after"].as_double() == Approx(0.0805).margin(1e-9));
  // The last token went at 2901 ms. At 4 s, 1.099 s of refill: 10 tokens and 99% of the next.
  REQUIRE(at4["remaining"].as_int() == 10);
  REQUIRE(at4["retry_after"].as_double() == 0);
  REQUIRE(at4["reset"].as_double() == Approx(0.901).margin(1e-9));
  REQUIRE(gcra_at4 == at4);
  // Full again (and capped) long before 5.5 s.
  REQUIRE(at6["remaining"].as_int() == burst);
  REQUIRE(at6["reset"].as_double() == 0);
}

TEST_CASE("a leaky bucket queues at most its burst and releases it at the steady rate") {
  // burst 10, rate 100/s (one release per 10 ms); 1000 rps from 1 s to 2 s (arrivals 1001..2000
  // ms). Releases are at 1001 + 10 k ms and a request is accepted while its release is at most
  // burst * 10 ms away: the last release slot is 2000 + 100 ms, so k = 0..109.
  const auto r =
      run_experiment(spike(seconds(1), seconds(2), 1000), seconds(3),
                     {{"rate_limiting", "leaky_bucket", {{"limit", 100}, {"burst", 10}}}});
  REQUIRE(figure(r, "leaky_bucket", "accepted") == 110);
  // Shaping costs latency instead of a 429: at most burst intervals of waiting, plus service.
  const double p99 = figure(r, "leaky_bucket", "ok_p99");
  CHECK(p99 > 0.09);
  CHECK(p99 < (0.100 + 0.001) * 1.02);
}

TEST_CASE(
    "retry-after is honest for every limiter: one nanosecond earlier is refused, at "
    "retry-after the request is accepted") {
  // One client saturates the limiter (1000 rps from 0.5 s to 0.8 s, limit 100/s, burst 20);
  // 0.5 ms after the last arrival we read retry-after and send probe requests ourselves.
  for (const char* v :
       {"fixed_window", "sliding_log", "sliding_window", "token_bucket", "leaky_bucket", "gcra"}) {
    INFO(v);
    Experiment e({.duration = seconds(3)});
    e.set_workload(spike(milliseconds(500), milliseconds(800), 1000));
    SystemSlot& s = e.add(registry(), "rate_limiting", v, {{"limit", 100}, {"burst", 20}});
    Time retry = -1;
    std::int64_t before_early = 0, after_early = -1, after_on_time = -1;
    auto probe = [&s](std::uint64_t id) {
      Request r;
      r.id = id;
      r.arrival = s.now();
      r.service = milliseconds(1);
      s.deliver(r);
      return s.call("counts", {})["accepted"].as_int();
    };
    e.at(milliseconds(800.5), [&] {
      const Value h = s.call("headers", {{"client", 0}});
      REQUIRE(h["remaining"].as_int() == 0);
      retry = std::llround(h["retry_after"].as_double() * 1e9);
      REQUIRE(retry > 0);
      const Time now = s.now();
      e.at(now + retry - 1, [&] {
        before_early = s.call("counts", {})["accepted"].as_int();
        after_early = probe(1000000);
      });
      e.at(now + retry, [&] { after_on_time = probe(1000001); });
    });
    e.run();
    REQUIRE(retry > 0);
    CHECK(after_early == before_early);        // refused (a 429)
    CHECK(after_on_time == before_early + 1);  // accepted
  }
}

TEST_CASE("limits are kept per client: ten clients get ten quotas, a global limit one") {
  // 1000 rps for 10 s over 10 clients: about 100 requests per client per window, always more
  // than the limit of 50, so the fixed window accepts exactly 50 per client per window.
  Experiment e({.duration = seconds(10)});
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 1000;
  w.clients = 10;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  e.set_workload(w);
  SystemSlot& per_client = e.add(registry(), "rate_limiting", "fixed_window",
                                 {{"limit", 50}, {"scope", "client"}}, "per_client");
  e.add(registry(), "rate_limiting", "fixed_window", {{"limit", 50}, {"scope", "global"}},
        "global");
  Value headers;
  // By 9.9 s each client has sent about 99 requests in the window: surely past its 50.
  e.at(seconds(9.9), [&] { headers = per_client.call("headers", {{"client", 3}}); });
  const auto r = e.run();
  REQUIRE(figure(r, "per_client", "accepted") == 10 * 10 * 50);
  REQUIRE(figure(r, "global", "accepted") == 10 * 50);
  // Each client's 50 are accepted early in every window: a window-length interval straddling a
  // boundary sees more than 50, never more than twice.
  CHECK(figure(r, "per_client", "peak_per_window") > 50);
  CHECK(figure(r, "per_client", "peak_per_window") <= 2 * 50);
  REQUIRE(headers["limit"].as_int() == 50);
  REQUIRE(headers["remaining"].as_int() == 0);
  REQUIRE(headers["retry_after"].as_double() == Approx(0.1));
}

TEST_CASE(
    "an API hit by ten times its capacity collapses without a limiter and keeps its P99 "
    "with one") {
  // Capacity: 10 workers x 10 ms = 1000 rps. Offered: 10 000 rps from 10 clients. The limiter
  // gives each client 90 rps (900 rps in total) with a burst of 10.
  Workload w = hldlab::testing::poisson_workload(10000);
  w.clients = 10;
  w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : {"none", "token_bucket", "gcra", "sliding_window"})
    systems.push_back(
        {"rate_limiting", v, {{"limit", 90}, {"burst", 10}, {"capacity", 10}, {"timeout", "5s"}}});
  const auto r = run_experiment(w, seconds(10), systems);
  const auto& none = row(r, "none");
  const auto& bucket = row(r, "token_bucket");
  INFO("none ok_p99 " << figure(none, "ok_p99") << ", bucket ok_p99 " << figure(bucket, "ok_p99"));
  // Without a limiter the queue holds most of the traffic and almost everyone times out.
  CHECK(figure(none, "queue_max") > 30000);
  CHECK(none.count(Outcome::timeout) > none.requests / 2);
  CHECK(figure(none, "ok_p99") > 4.0);
  for (const char* v : {"token_bucket", "gcra", "sliding_window"}) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(s.count(Outcome::timeout) == 0);
    // The sliding window counter lets every client's whole first quota in at once at the start
    // (no previous window yet): a 900-request burst that its P99 remembers.
    CHECK(figure(s, "ok_p99") < (std::string(v) == "sliding_window" ? 1.0 : 0.2));
    // 429 for the excess: about 91% of the traffic, each with a retry-after below the window.
    CHECK(s.count(Outcome::rejected) > s.requests * 85 / 100);
    CHECK(figure(s, "retry_after_mean") > 0);
    CHECK(figure(s, "retry_after_mean") < 1.0);
    // And more requests served in time than without a limiter.
    CHECK(s.count(Outcome::ok) > none.count(Outcome::ok));
  }
}

TEST_CASE("losing the limiter's state hands every client a fresh quota") {
  const auto r =
      run_experiment(spike(milliseconds(500), seconds(3), 1000), seconds(3),
                     {{"rate_limiting", "sliding_log", {{"limit", 100}}}}, 1, [](Experiment& e) {
                       SystemSlot& s = *e.systems()[0];
                       e.at(seconds(1), [&s] { s.inject("limiter_state_lost", {}); });
                     });
  // 501..600 ms, then a fresh log at 1 s: 1000..1099 ms, then 2000..2099 ms.
  REQUIRE(figure(r, "sliding_log", "accepted") == 300);
  REQUIRE(figure(r, "sliding_log", "peak_per_window") == 200);
}

TEST_CASE("a backend that lost all its workers queues every arrival until they are back") {
  // No limiter, 10 workers of 10 ms, one request every 1.25 ms (800 rps: 8 workers busy).
  // All workers die at 1 s (the running requests finish) and come back at 2 s. The arrivals
  // at 1.000, 1.00125, ..., 1.99875 s queue: 800 of them; the one at 2 s finds the workers
  // back (a callback runs before an arrival at the same instant), and they drain the backlog
  // at 200 rps more than the arrivals bring.
  Workload w = hldlab::testing::constant_workload(800, milliseconds(10));
  Value during;
  const auto r = run_experiment(
      w, seconds(10), {{"rate_limiting", "none", {{"capacity", 10}}}}, 1, [&during](Experiment& e) {
        SystemSlot& s = *e.systems()[0];
        e.at(seconds(1), [&s] { s.inject("kill_workers", {{"count", 10}}); });
        e.at(seconds(1.5), [&s, &during] { during = s.call("backend", {}); });
        e.at(seconds(2), [&s] { s.inject("restore_workers", {}); });
      });
  REQUIRE(during["workers"].as_int() == 0);
  REQUIRE(during["busy"].as_int() == 0);
  REQUIRE(during["queued"].as_int() == 400);  // 1.000 .. 1.49875 s
  REQUIRE(figure(r, "none", "queue_max") == 800);
  REQUIRE(row(r, "none").count(Outcome::ok) == row(r, "none").requests);
  // The longest wait is the first queued request's: it arrived at 1 s and started at 2 s.
  REQUIRE(row(r, "none").max == Approx(1.010).margin(1e-9));
}

TEST_CASE("a burst that would take longer than 30 years to refill is refused") {
  Experiment e;
  REQUIRE_THROWS_WITH(e.add(registry(), "rate_limiting", "token_bucket",
                            {{"limit", 1}, {"window", "86400s"}, {"burst", 1000000000}}),
                      Catch::Contains("burst / rate is too long"));
  REQUIRE_NOTHROW(e.add(registry(), "rate_limiting", "token_bucket",
                        {{"limit", 1}, {"window", "86400s"}, {"burst", 1000}}));
}

TEST_CASE("the rate_limiting script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("rate_limiting.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("the rate limiter capstone script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("capstone_rate_limiter.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
