#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"single_cron", "two_crons", "leased_shards", "queued_pipeline"};

/// A provider that accepts everything at once: only the schedulers matter.
Map perfect_provider(Map params = {}) {
  params["provider_rate"] = 1e6;
  params["provider_burst"] = 1e6;
  params["provider_failure"] = 0.0;
  params["provider_latency_median"] = "10ms";
  params["provider_latency_p99"] = "10ms";
  return params;
}

std::vector<hldlab::testing::SystemSpec> every_variant(const Map& params) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"scheduler_notifications", v, params});
  return systems;
}

}  // namespace

TEST_CASE(
    "a crashed cron box misses exactly the jobs due while it was down; two boxes fire every job "
    "twice; leased shards fire each exactly once, late by less than lease + tick") {
  // 10 jobs/s due at once (horizon 0), ticks every second: a job arriving in (k-1, k] fires at
  // tick k (one arriving at k s, just after tick k, at k + 1). Node 0 crashes at 20 s (before
  // tick 20) and restarts at 30 s (before tick 30: the restart was scheduled first): a cron box
  // skips ticks 20 .. 29, i.e. the jobs that arrived at 19.0 .. 28.9 s: 100.
  Workload w = hldlab::testing::constant_workload(10);
  const Map params = perfect_provider({{"scheduled_share", 1.0}, {"schedule_horizon", 0}});
  const auto r = run_experiment(w, seconds(60), every_variant(params), 1, [](Experiment& e) {
    inject_everywhere(e, seconds(20), "crash", {{"node", 0}, {"duration", "10s"}});
  });
  for (const char* v : kVariants) {
    INFO(v);
    REQUIRE(figure(r, v, "notifications") == 599);
    CHECK(row(r, v).count(Outcome::ok) == 599);  // stored, whatever happens next
  }
  CHECK(figure(r, "single_cron", "missed") == 100);
  CHECK(figure(r, "single_cron", "fired_twice") == 0);
  CHECK(figure(r, "single_cron", "delivered") == 599 - 100);
  CHECK(figure(r, "two_crons", "missed") == 0);
  CHECK(figure(r, "two_crons", "fired_twice") == 599 - 100);
  CHECK(figure(r, "two_crons", "duplicates") == 599 - 100);
  for (const char* v : {"leased_shards", "queued_pipeline"}) {
    INFO(v);
    CHECK(figure(r, v, "missed") == 0);
    CHECK(figure(r, v, "fired_twice") == 0);
    CHECK(figure(r, v, "duplicates") == 0);
    CHECK(figure(r, v, "delivered") == 599);
    // Node 0's four shards: last renewed at 19 s, expired at 24 s, taken over then, and fired
    // from tick 20 on at tick 24: jobs due after 19 s wait up to 5 s.
    CHECK(figure(r, v, "takeovers") == 4);
    CHECK(figure(r, v, "fire_delay_max") > 4);
    CHECK(figure(r, v, "fire_delay_max") <= 5 + 1);
  }
}

TEST_CASE(
    "a node paused past its lease wakes up and fires its old shards again: fencing refuses "
    "exactly the fires that would have been duplicates") {
  Workload w = hldlab::testing::constant_workload(10);
  const Map base = perfect_provider({{"scheduled_share", 1.0}, {"schedule_horizon", 0}});
  Map unfenced = base;
  unfenced["fencing"] = false;
  const auto r = run_experiment(
      w, seconds(60),
      {{"scheduler_notifications", "leased_shards", base, "fenced"},
       {"scheduler_notifications", "leased_shards", unfenced, "unfenced"}},
      1, [](Experiment& e) {
        inject_everywhere(e, seconds(40), "pause", {{"node", 1}, {"duration", "10s"}});
      });
  // Node 1's shards are taken over at 44 s and fired from tick 40 on; at 50 s node 1 wakes up
  // and fires its ticks 40 .. 49 of them again: about a third of 100 jobs.
  const double refired = figure(r, "unfenced", "fired_twice");
  CHECK(refired > 15);
  CHECK(refired < 55);
  CHECK(figure(r, "unfenced", "duplicates") == refired);
  CHECK(figure(r, "fenced", "fenced") == refired);
  CHECK(figure(r, "fenced", "fired_twice") == 0);
  CHECK(figure(r, "fenced", "duplicates") == 0);
  for (const char* v : {"fenced", "unfenced"}) {
    INFO(v);
    CHECK(figure(r, v, "missed") == 0);
    CHECK(figure(r, v, "takeovers") == 4);
  }
}

TEST_CASE(
    "synchronous sends beyond a provider's limit are refused: burst + rate x time get through; "
    "the queue paces them below the limit and delivers every one, later") {
  // 300 notifications/s for 10 s to one provider that takes 100/s with a burst of 20.
  Workload w = hldlab::testing::constant_workload(300);
  const Map params{{"scheduled_share", 0.0},         {"providers", 1},
                   {"provider_rate", 100.0},         {"provider_burst", 20.0},
                   {"provider_failure", 0.0},        {"provider_latency_median", "50ms"},
                   {"provider_latency_p99", "50ms"}, {"send_rate", 90.0}};
  const auto r = run_experiment(w, seconds(10),
                                {{"scheduler_notifications", "leased_shards", params},
                                 {"scheduler_notifications", "queued_pipeline", params}});
  const auto& sync = row(r, "leased_shards");
  REQUIRE(sync.requests == 2999);
  // Between the first request (3.3 ms) and the last (9.9967 s) the bucket lets through its
  // burst and one send per 10 ms.
  CHECK(figure(sync, "delivered") == Approx(20 + 100 * (9.9967 - 0.0033)).margin(1));
  CHECK(figure(sync, "lost") == sync.requests - figure(sync, "delivered"));
  CHECK(figure(sync, "rate_limited") == figure(sync, "lost"));
  CHECK(sync.count(Outcome::error) == figure(sync, "lost"));
  CHECK(sync.p50_ok == Approx(0.05).epsilon(0.01));  // the caller waits for the provider
  CHECK(sync.p50 == Approx(0.005).epsilon(0.01));    // most get a 429 in 5 ms
  const auto& queue = row(r, "queued_pipeline");
  CHECK(figure(queue, "delivered") == 2999);
  CHECK(figure(queue, "rate_limited") == 0);
  CHECK(figure(queue, "lost") == 0);
  CHECK(queue.max == Approx(0.002).epsilon(0.01));  // answered once queued
  // One send per 1/90 s: the last of 2999 leaves at 2999 / 90 = 33.3 s, queued at 10 s.
  CHECK(figure(queue, "delivery_delay_p99") > 0.97 * (2999 / 90.0 - 10));
}

TEST_CASE(
    "a provider slower than the timeout: synchronous callers time out (but the provider "
    "delivered); the queue retries each max_attempts times: max_attempts - 1 duplicates each, "
    "then the dead-letter queue") {
  Workload w = hldlab::testing::constant_workload(10);
  const Map params{
      {"scheduled_share", 0.0},       {"provider_failure", 0.0}, {"provider_latency_median", "2s"},
      {"provider_latency_p99", "2s"}, {"send_timeout", "1s"},    {"max_attempts", 3},
      {"backoff_base", "100ms"}};
  const auto r = run_experiment(w, seconds(10),
                                {{"scheduler_notifications", "leased_shards", params},
                                 {"scheduler_notifications", "queued_pipeline", params}});
  const auto& sync = row(r, "leased_shards");
  REQUIRE(sync.requests == 99);
  CHECK(sync.count(Outcome::timeout) == 99);
  CHECK(sync.p50 == Approx(1.0).epsilon(0.01));
  CHECK(figure(sync, "delivered") == 99);
  CHECK(figure(sync, "duplicates") == 0);
  const auto& queue = row(r, "queued_pipeline");
  CHECK(figure(queue, "delivered") == 99);
  CHECK(figure(queue, "duplicates") == 99 * 2);
  CHECK(figure(queue, "dead_lettered") == 99);  // never answered ok: dead-lettered, yet delivered
  CHECK(figure(queue, "lost") == 0);
  CHECK(figure(queue, "retries") == 99 * 2);
  CHECK(queue.count(Outcome::ok) == 99);
}

TEST_CASE(
    "provider failures: synchronous sends lose the failed share; the queue retries them (the "
    "same first attempts fail) and loses none") {
  Workload w = hldlab::testing::poisson_workload(100);
  const Map params{{"scheduled_share", 0.0},
                   {"provider_failure", 0.2},
                   {"provider_rate", 1000.0},
                   {"send_rate", 900.0}};
  double lost = 0, sent = 0;
  for (std::uint64_t seed : {1, 2, 3, 4}) {
    const auto r = run_experiment(w, seconds(30),
                                  {{"scheduler_notifications", "leased_shards", params},
                                   {"scheduler_notifications", "queued_pipeline", params}},
                                  seed);
    INFO("seed " << seed);
    const double n = figure(r, "leased_shards", "notifications");
    lost += figure(r, "leased_shards", "lost");
    sent += n;
    // The caller hears of every loss: an error (5xx), or a timeout (P(latency > 1 s) = 0.1%,
    // which may also hide a delivery).
    const auto& sync = row(r, "leased_shards");
    CHECK(sync.count(Outcome::error) <= figure(sync, "lost"));
    CHECK(sync.count(Outcome::error) + sync.count(Outcome::timeout) >= figure(sync, "lost"));
    CHECK(figure(r, "queued_pipeline", "lost") == 0);
    // A notification fails max_attempts = 6 times with probability 0.2^6 = 6.4e-5.
    CHECK(figure(r, "queued_pipeline", "dead_lettered") <= 2);
    CHECK(figure(r, "queued_pipeline", "delivered") +
              figure(r, "queued_pipeline", "dead_lettered") >=
          n);
    // The first attempt of every notification draws the same answer in both variants.
    CHECK(figure(r, "queued_pipeline", "retries") >= figure(r, "leased_shards", "lost"));
  }
  const double sd = std::sqrt(sent * 0.2 * 0.8);
  INFO("lost " << lost << " of " << sent);
  CHECK(std::abs(lost - 0.2 * sent) < 4 * sd);
}

TEST_CASE(
    "full jitter: the backoff before retry k is uniform(0, min(cap, base 2^(k-1))), its mean "
    "half of that") {
  // Provider 0 is down for the whole run: every notification to it fails 5 times (max_attempts)
  // and is dead-lettered after 4 backoffs with ceilings 100, 200, 400, 800 ms (cap 600 ms:
  // 600): mean (50 + 100 + 200 + 300) / 4 = 162.5 ms.
  Workload w = hldlab::testing::constant_workload(100);
  const Map params{{"scheduled_share", 0.0},  {"providers", 1},         {"max_attempts", 5},
                   {"backoff_base", "100ms"}, {"backoff_cap", "600ms"}, {"provider_rate", 1000.0},
                   {"send_rate", 900.0}};
  const auto r = run_experiment(
      w, seconds(20), {{"scheduler_notifications", "queued_pipeline", params}}, 1,
      [](Experiment& e) {
        inject_everywhere(e, 0, "provider_outage", {{"provider", 0}, {"duration", "1h"}});
      });
  const double n = figure(r, "queued_pipeline", "notifications");
  CHECK(figure(r, "queued_pipeline", "dead_lettered") == n);
  CHECK(figure(r, "queued_pipeline", "retries") == 4 * n);
  // The variance of uniform(0, c) is c^2 / 12.
  const double var = (0.1 * 0.1 + 0.2 * 0.2 + 0.4 * 0.4 + 0.6 * 0.6) / 12 / 4;
  const double sd = std::sqrt(var / n);
  CHECK(std::abs(figure(r, "queued_pipeline", "backoff_mean") - 0.1625) < 4 * sd + 0.002);
}

TEST_CASE("after a warm-up the figures count the notifications requested after it") {
  Workload w = hldlab::testing::constant_workload(10);
  const auto r = run_experiment(
      w, {.duration = seconds(20), .warmup = seconds(10)},
      every_variant(perfect_provider({{"scheduled_share", 1.0}, {"schedule_horizon", 0}})));
  for (const char* v : kVariants) {
    INFO(v);
    CHECK(figure(r, v, "notifications") == 100);  // 10.0 .. 19.9 s
    CHECK(figure(r, v, "missed") == 0);
  }
  CHECK(figure(r, "two_crons", "fired_twice") == 100);
}

TEST_CASE("a fault on a node or provider that does not exist is refused") {
  Experiment e;
  SystemSlot& cron = e.add(registry(), "scheduler_notifications", "single_cron");
  REQUIRE_THROWS_WITH(cron.inject("crash", {{"node", 1}}), Catch::Contains("does not exist"));
  REQUIRE_THROWS_WITH(cron.inject("provider_outage", {{"provider", 2}}),
                      Catch::Contains("does not exist"));
}

TEST_CASE("the scheduler_notifications script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("scheduler_notifications.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}
