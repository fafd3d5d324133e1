#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kQueues[] = {"at_most_once", "at_least_once",   "effectively_once",
                               "dead_letter",  "bounded_backoff", "load_shedding",
                               "autoscaling"};
const char* const kAll[] = {"sync_chain",  "at_most_once",    "at_least_once", "effectively_once",
                            "dead_letter", "bounded_backoff", "load_shedding", "autoscaling"};

/// Orders at a constant `rps` from 1/rps up to `traffic`, each needing `service` at every
/// downstream; every variant in `variants` with `params`; `setup` schedules faults. The
/// experiment lasts 1 s more than the traffic, then drains.
template <std::size_t N>
ExperimentResult constant_run(double rps, Time traffic, Time service, const Map& params,
                              const char* const (&variants)[N],
                              const std::function<void(Experiment&)>& setup = {},
                              Time drain = seconds(60)) {
  Workload w = hldlab::testing::constant_workload(0, service);
  w.arrivals.spikes.push_back({0, traffic, rps});
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : variants) systems.push_back({"message_queue", v, params});
  return hldlab::testing::run_experiment(w, {.duration = traffic + seconds(1), .drain = drain},
                                         systems, setup);
}

/// Erlang C: the probability that an arrival waits in an M/M/c queue with offered load a = λ/μ.
double erlang_c(int c, double a) {
  double term = 1, sum = 0;  // a^k / k!
  for (int k = 0; k < c; ++k) {
    sum += term;
    term *= a / (k + 1);
  }
  const double last = term * c / (c - a);
  return last / (sum + last);
}

}  // namespace

TEST_CASE(
    "the sync chain makes the user wait for the three calls; a queue only for the order and the "
    "publish") {
  // 10 orders/s, 10 ms per call: nothing ever queues. Sync: 2 ms (order) + 3 x (1 + 10 + 1) ms.
  const auto r = constant_run(10, seconds(2), milliseconds(10), {}, kAll);
  const auto& sync = row(r, "sync_chain");
  REQUIRE(sync.requests == 20);
  CHECK(sync.count(Outcome::ok) == 20);
  CHECK(sync.max == Approx(0.038).epsilon(0.01));
  CHECK(sync.p50 == Approx(0.038).epsilon(0.01));
  for (const char* v : kQueues) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(s.count(Outcome::ok) == 20);
    CHECK(s.max == Approx(0.003).epsilon(0.01));
    CHECK(figure(s, "published") == 60);
    CHECK(figure(s, "processed") == 60);
    CHECK(figure(s, "wait_max") == 0);
    CHECK(figure(s, "end_to_end_p99") == Approx(0.010).epsilon(0.01));
    CHECK(figure(s, "lost") == 0);
    CHECK(figure(s, "duplicates") == 0);
    CHECK(figure(s, "stuck") == 0);
  }
}

TEST_CASE(
    "a service down for 1 s fails every order whose call reaches it then; the queue delivers "
    "those messages after the restart") {
  // Orders every 10 ms from 10 ms; the email call reaches email 3 ms after the order and runs
  // 10 ms. Email crashes at 1.0055 s for 1 s: the order of 1.000 s is running there (reset),
  // the 100 orders of 1.01 .. 2.00 s find it down. Queue: the message of the 1.000 s order is
  // the one a consumer holds at the crash.
  const auto r = constant_run(100, seconds(4), milliseconds(10), {}, kAll, [](Experiment& e) {
    hldlab::testing::inject_everywhere(e, microseconds(1005500), "crash_service",
                                       {{"service", "email"}, {"duration", "1s"}});
  });
  const auto& sync = row(r, "sync_chain");
  REQUIRE(sync.requests == 400);
  CHECK(sync.count(Outcome::error) == 101);
  CHECK(sync.count(Outcome::ok) == 299);
  for (const char* v : kQueues) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(s.count(Outcome::ok) == 400);
    CHECK(figure(s, "crash_in_flight") == 1);
    CHECK(figure(s, "published") == 1200);
    // The backlog of the outage: 100 messages waited up to 1 s.
    CHECK(figure(s, "wait_max") == Approx(1.0).epsilon(0.01));
  }
  CHECK(figure(r, "at_most_once", "lost") == 1);
  CHECK(figure(r, "at_most_once", "processed") == 1199);
  for (const char* v : {"at_least_once", "effectively_once", "dead_letter"}) {
    INFO(v);
    CHECK(figure(r, v, "lost") == 0);
    CHECK(figure(r, v, "redelivered") == 1);
    CHECK(figure(r, v, "duplicates") == 0);  // it was processing, not processed
    CHECK(figure(r, v, "processed") == 1200);
  }
}

TEST_CASE(
    "a consumer crash with k messages being processed: at most once loses exactly k, at least "
    "once redelivers exactly k and processes each once") {
  // Five orders at 1..5 ms; their email messages reach the queue at 4..8 ms and run 100 ms on
  // 8 consumers. Email crashes at 50 ms (back at 1.05 s): k = 5 messages are being processed.
  const auto r = constant_run(
      1000, milliseconds(5), milliseconds(100), {{"consumers", 8}}, kQueues, [](Experiment& e) {
        hldlab::testing::inject_everywhere(e, milliseconds(50), "crash_service",
                                           {{"service", "email"}, {"duration", "1s"}});
      });
  for (const char* v : kQueues) {
    INFO(v);
    REQUIRE(row(r, v).requests == 5);
    CHECK(figure(r, v, "crash_in_flight") == 5);
  }
  CHECK(figure(r, "at_most_once", "lost") == 5);
  CHECK(figure(r, "at_most_once", "processed") == 10);  // inventory and analytics
  for (const char* v : {"at_least_once", "effectively_once", "dead_letter", "autoscaling"}) {
    INFO(v);
    CHECK(figure(r, v, "redelivered") == 5);
    CHECK(figure(r, v, "duplicates") == 0);
    CHECK(figure(r, v, "lost") == 0);
    CHECK(figure(r, v, "processed") == 15);
  }
}

TEST_CASE(
    "a consumer crash with k messages processed but not acknowledged: at least once duplicates "
    "exactly k, effectively once none, at most once loses none") {
  // The same five orders, 10 ms of work, acks that take 100 ms to reach the broker: at 50 ms the
  // five email messages are processed (by 18 ms) and their acks still travelling.
  const auto r =
      constant_run(1000, milliseconds(5), milliseconds(10),
                   {{"consumers", 8}, {"ack_delay", "100ms"}}, kQueues, [](Experiment& e) {
                     hldlab::testing::inject_everywhere(e, milliseconds(50), "crash_service",
                                                        {{"service", "email"}, {"duration", "1s"}});
                   });
  CHECK(figure(r, "at_least_once", "crash_in_flight") == 5);
  CHECK(figure(r, "at_least_once", "redelivered") == 5);
  CHECK(figure(r, "at_least_once", "duplicates") == 5);
  CHECK(figure(r, "at_least_once", "processed") == 15);
  CHECK(figure(r, "effectively_once", "redelivered") == 5);
  CHECK(figure(r, "effectively_once", "duplicates") == 0);
  CHECK(figure(r, "effectively_once", "dedupe_hits") == 5);
  CHECK(figure(r, "effectively_once", "processed") == 15);
  // At most once acked on delivery: nothing in flight when it crashed, nothing lost.
  CHECK(figure(r, "at_most_once", "crash_in_flight") == 0);
  CHECK(figure(r, "at_most_once", "lost") == 0);
  CHECK(figure(r, "at_most_once", "processed") == 15);
}

TEST_CASE("a sync chain's availability is the product of its services' availabilities") {
  // Every attempt fails with a service's rate (a hash of order, service and attempt): the sync
  // chain answers only when the three first attempts succeed, 0.9 x 0.8 x 0.7 = 0.504. 3000
  // orders per seed: the standard deviation of the measured share is sqrt(.504 x .496 / 3000)
  // = 0.0091; 4 of them is the tolerance. Every queue variant answers every order.
  for (std::uint64_t seed : {1, 2, 3}) {
    Workload w = hldlab::testing::poisson_workload(100, milliseconds(5));
    std::vector<hldlab::testing::SystemSpec> systems;
    for (const char* v : {"sync_chain", "at_most_once", "at_least_once"})
      systems.push_back({"message_queue", v, {}});
    const auto r =
        hldlab::testing::run_experiment(w, seconds(30), systems, seed, [](Experiment& e) {
          const double rates[] = {0.1, 0.2, 0.3};
          const char* names[] = {"email", "inventory", "analytics"};
          for (int s = 0; s < 3; ++s)
            hldlab::testing::inject_everywhere(
                e, 0, "service_errors",
                {{"service", names[s]}, {"rate", rates[s]}, {"duration", "1h"}});
        });
    INFO("seed " << seed);
    const auto& sync = row(r, "sync_chain");
    REQUIRE(sync.requests > 2800);
    const double availability = static_cast<double>(sync.count(Outcome::ok)) / sync.requests;
    CHECK(std::abs(availability - 0.504) < 4 * std::sqrt(0.504 * 0.496 / sync.requests));
    for (const char* v : {"at_most_once", "at_least_once"}) {
      INFO(v);
      CHECK(row(r, v).count(Outcome::ok) == row(r, v).requests);
    }
    // At most once drops every failed attempt; at least once retries it until it succeeds.
    const auto& amo = row(r, "at_most_once");
    const double published = figure(amo, "published");
    CHECK(figure(amo, "lost") + figure(amo, "processed") == published);
    CHECK(std::abs(figure(amo, "lost") / published - 0.2) < 0.02);
    const auto& alo = row(r, "at_least_once");
    CHECK(figure(alo, "processed") == published);
    CHECK(figure(alo, "lost") == 0);
    // Retries per message: p / (1 - p) for each service, (0.111 + 0.25 + 0.429) / 3 on average.
    CHECK(figure(alo, "retries") / published ==
          Approx((1. / 9 + 1. / 4 + 3. / 7) / 3).epsilon(0.1));
  }
}

TEST_CASE(
    "p poison messages pin p consumers forever under retry-forever: fewer than the consumers "
    "slow the queue, as many stop it; the dead-letter queue takes exactly p") {
  const char* const variants[] = {"sync_chain", "at_most_once", "at_least_once", "dead_letter"};
  // 20 orders/s for 5 s, 10 ms of work, 4 consumers; the first p orders carry a poison
  // inventory message. The drain stops 2 s after the experiment's 6 s.
  auto run = [&](int p) {
    return constant_run(
        20, seconds(5), milliseconds(10), {}, variants,
        [p](Experiment& e) {
          hldlab::testing::inject_everywhere(e, 0, "poison",
                                             {{"service", "inventory"}, {"count", p}});
        },
        seconds(2));
  };
  SECTION("three poison messages: three consumers pinned, the fourth carries the queue") {
    const auto r = run(3);
    CHECK(row(r, "sync_chain").count(Outcome::error) == 3);
    CHECK(figure(r, "at_most_once", "lost") == 3);
    const auto& forever = row(r, "at_least_once");
    CHECK(figure(forever, "stuck") == 3);
    CHECK(figure(forever, "processed") == 300 - 3);
    CHECK(forever.end == Approx(8.0).epsilon(0.001));  // it never drains: the drain limit
    const auto& dlq = row(r, "dead_letter");
    CHECK(figure(dlq, "dead_lettered") == 3);
    CHECK(figure(dlq, "retries") == 3 * 4);  // max_attempts 5: four retries each
    CHECK(figure(dlq, "stuck") == 0);
    CHECK(figure(dlq, "processed") == 300 - 3);
  }
  SECTION("four poison messages on four consumers: every later inventory message is stuck") {
    const auto r = run(4);
    const auto& forever = row(r, "at_least_once");
    CHECK(figure(forever, "stuck") == 100);  // all 100 inventory messages
    CHECK(figure(forever, "processed") == 200);
    CHECK(figure(forever, "wait_max") == 0);  // the 96 others were never even taken
    CHECK(figure(row(r, "dead_letter"), "dead_lettered") == 4);
    CHECK(figure(row(r, "dead_letter"), "stuck") == 0);
    CHECK(figure(row(r, "dead_letter"), "processed") == 296);
  }
}

TEST_CASE(
    "under twice the consumers' capacity an unbounded queue grows by the difference; a bounded "
    "one stops at its limit and sheds exactly the rest") {
  // One consumer, 10 ms per message: 100 messages/s per service. 200 orders/s for 1 s: each
  // queue receives 200 messages and serves 100 in that second, so 100 wait at the last arrival.
  // With a limit of 20 the queue holds 20 at most: 100 served + 20 queued = 120 accepted.
  const char* const variants[] = {"at_least_once", "load_shedding", "bounded_backoff"};
  const auto r =
      constant_run(200, seconds(1), milliseconds(10),
                   {{"consumers", 1}, {"queue_limit", 20}, {"publish_attempts", 1}}, variants);
  const auto& unbounded = row(r, "at_least_once");
  REQUIRE(unbounded.requests == 200);
  CHECK(figure(unbounded, "peak_depth") == 3 * 100);
  CHECK(figure(unbounded, "peak_queue_bytes") == 3 * 100 * 1024);
  CHECK(figure(unbounded, "wait_max") == Approx(1.0).epsilon(0.02));  // the last waits 100 x 10 ms
  const auto& shed = row(r, "load_shedding");
  CHECK(shed.count(Outcome::ok) == 120);
  CHECK(shed.count(Outcome::rejected) == 80);
  CHECK(figure(shed, "peak_depth") == 3 * 20);
  CHECK(figure(shed, "wait_max") == Approx(0.2).epsilon(0.05));
  // One publish attempt: the producer fails the order instead of waiting.
  CHECK(row(r, "bounded_backoff").count(Outcome::error) == 80);
}

TEST_CASE("the producer's backoff holds orders back while the queue is full, and loses none") {
  // As above, with five publish attempts: an order refused by a full queue tries again after
  // 100, 200, 400, 800 ms (x uniform(0.5, 1)); once traffic stops the queue drains and the late
  // retries get in. No order is rejected, every accepted message is processed.
  const char* const variants[] = {"bounded_backoff"};
  const auto r = constant_run(200, seconds(1), milliseconds(10),
                              {{"consumers", 1}, {"queue_limit", 20}}, variants);
  const auto& s = row(r, "bounded_backoff");
  CHECK(s.count(Outcome::rejected) == 0);
  CHECK(s.count(Outcome::ok) + s.count(Outcome::error) == 200);
  CHECK(s.count(Outcome::ok) > 120);
  CHECK(figure(s, "peak_depth") <= 3 * 20);
  CHECK(figure(s, "publish_retries") > 80);
  CHECK(figure(s, "processed") == 3 * s.count(Outcome::ok));
  CHECK(s.max > 1.0);  // users wait for the backoff: backpressure reaches them
}

TEST_CASE("autoscaling adds consumers as the backlog grows, up to max_consumers") {
  // 4 consumers, 20 ms per message: 200/s per service. 500 orders/s for 20 s: the backlog grows
  // by 300/s until new consumers (target 10 messages each, 2 s to start) catch up.
  const char* const variants[] = {"at_least_once", "autoscaling"};
  const auto r = constant_run(
      500, seconds(20), milliseconds(20),
      {{"max_consumers", 16}, {"scale_interval", "1s"}, {"consumer_startup", "2s"}}, variants);
  const auto& fixed = row(r, "at_least_once");
  const auto& scaled = row(r, "autoscaling");
  CHECK(figure(scaled, "peak_consumers") == 16);
  CHECK(figure(fixed, "peak_depth") > 3 * 5000);
  CHECK(figure(scaled, "peak_depth") < figure(fixed, "peak_depth") / 5);
  CHECK(figure(scaled, "processed") == figure(fixed, "processed"));
  CHECK(figure(scaled, "wait_max") < figure(fixed, "wait_max") / 5);
}

TEST_CASE("the mean wait in the queue matches M/M/c (Erlang C) within 4% over five seeds") {
  // c = 4 consumers, exponential work of mean 10 ms (mu = 100/s), Poisson orders at 320/s:
  // rho = 0.8, a = 3.2, C(4, 3.2) = 0.5964, Wq = C / (c mu - lambda) = 7.46 ms. A run of 1000 s
  // sees 320 000 messages per queue, but the waits are strongly autocorrelated (relaxation time
  // ~ 1 / (c mu (1 - sqrt rho)^2) = 0.22 s): over 20 seeds the run means had a relative
  // standard deviation of 2.6% and averaged 1.007 x Wq. So: each seed within 10% (3.8 sd),
  // the average of five within 4% (3.5 sd of the average).
  const double c = 4, mu = 100, lambda = 320;
  const double expected = erlang_c(4, lambda / mu) / (c * mu - lambda);
  REQUIRE(expected == Approx(7.455e-3).epsilon(0.001));
  double sum = 0;
  const std::uint64_t seeds[] = {1, 2, 3, 4, 5};
  for (std::uint64_t seed : seeds) {
    Workload w = hldlab::testing::poisson_workload(lambda);
    w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
    const auto r = hldlab::testing::run_experiment(
        w, seconds(1000), {{"message_queue", "at_least_once", {{"ack_delay", "0s"}}}}, seed);
    const double measured = figure(r, "at_least_once", "wait_mean");
    INFO("seed " << seed << ": measured " << measured << " s, Erlang C " << expected << " s");
    CHECK(std::abs(measured / expected - 1) < 0.10);
    sum += measured;
  }
  CHECK(std::abs(sum / std::size(seeds) / expected - 1) < 0.04);
}

TEST_CASE("after a warm-up the figures count only what happened after it") {
  // 10 orders/s that never overlap; the warm-up ends at 2 s: 20 orders before (0.1 .. 1.9 s plus
  // the one at 2.0 s counted after), 21 after -> 63 messages.
  Workload w = hldlab::testing::constant_workload(0, milliseconds(10));
  w.arrivals.spikes.push_back({0, seconds(4), 10});
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kQueues) systems.push_back({"message_queue", v, {}});
  const auto r = hldlab::testing::run_experiment(
      w, {.duration = seconds(4.05), .warmup = seconds(2)}, systems);
  for (const char* v : kQueues) {
    INFO(v);
    const auto& s = row(r, v);
    CHECK(figure(s, "published") == 3 * s.requests);
    CHECK(figure(s, "processed") == 3 * s.requests);
  }
}

TEST_CASE("the message_queue script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("message_queue.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 8);
  REQUIRE(r.exit_code() == 0);
}
