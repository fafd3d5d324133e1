#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"no_retry", "retry", "key_after_charge", "idempotency_key"};

std::vector<hldlab::testing::SystemSpec> every_variant(const Map& params) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"idempotency", v, params});
  return systems;
}

/// Every system gets `fault` at `t` (nothing when `fault` is empty).
std::function<void(Experiment&)> inject_at(Time t, const std::string& fault, const Map& params) {
  return [=](Experiment& e) {
    if (fault.empty()) return;
    for (const auto& s : e.systems())
      e.at(t, [&slot = *s, fault, params] { slot.inject(fault, params); });
  };
}

/// Constant arrivals at `rps` (every 1/rps from 1/rps up to `traffic`), with a fixed service
/// time; every variant with `params`; `fault` (if any) injected at `from`. The drain waits for
/// the charges still running after their client gave up (the lesson holds the run for them).
ExperimentResult constant_run(double rps, Time traffic, Time service, const Map& params,
                              const std::string& fault = "", const Map& fault_params = {},
                              Time from = 0) {
  Workload w = hldlab::testing::constant_workload(0, service);
  w.arrivals.spikes.push_back({0, traffic, rps});
  return hldlab::testing::run_experiment(w, traffic + seconds(1), every_variant(params), 1,
                                         inject_at(from, fault, fault_params));
}

}  // namespace

TEST_CASE(
    "when every answer is lost, retry charges each purchase max_attempts times and the key "
    "charges it once") {
  const auto r = constant_run(100, seconds(10), milliseconds(5), {{"max_attempts", 4}},
                              "drop_responses", {{"share", 1.0}, {"duration", "1h"}});
  const std::int64_t n = row(r, "retry").requests;
  REQUIRE(n == 1000);  // arrivals every 10 ms from 10 ms to 10 s
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    // Nobody ever hears back: every purchase times out, and every one was charged.
    CHECK(s.completed == n);
    CHECK(s.count(Outcome::timeout) == n);
    CHECK(figure(s, "charged_but_failed") == n);
  }
  const auto& retry = row(r, "retry");
  CHECK(figure(retry, "attempts") == 4 * n);
  CHECK(figure(retry, "charges") == 4 * n);
  CHECK(figure(retry, "double_charges") == 3 * n);
  for (const char* v : {"idempotency_key", "key_after_charge"}) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "attempts") == 4 * n);
    CHECK(figure(s, "charges") == n);
    CHECK(figure(s, "double_charges") == 0);
    CHECK(figure(s, "duplicates_absorbed") == 3 * n);
    CHECK(figure(s, "keys_stored") == n);  // 24 h TTL: nothing expired
  }
  CHECK(figure(row(r, "no_retry"), "charges") == n);
  CHECK(figure(row(r, "no_retry"), "attempts") == n);
}

TEST_CASE(
    "a window of lost answers double charges exactly the purchases whose answers fell in it") {
  // No jitter: attempt k+1 is sent timeout + 200 ms * 2^(k-1) after attempt k. The answer to an
  // attempt leaves the service 10 ms (network) + 5 ms (charge) after it is sent; a replayed
  // answer (key variants) leaves after 10 ms. Answers leaving in [10 s, 20 s) are lost.
  const Time timeout = seconds(1), base = milliseconds(200), delay = milliseconds(10),
             service = milliseconds(5), from = seconds(10), to = seconds(20);
  const int attempts = 4;
  const auto r = constant_run(100, seconds(30), service,
                              {{"max_attempts", attempts},
                               {"jitter", 0.0},
                               {"timeout", "1s"},
                               {"backoff_base", "200ms"},
                               {"network_delay", "10ms"}},
                              "drop_responses", {{"share", 1.0}, {"duration", "10s"}}, from);
  const auto& retry = row(r, "retry");
  // Replay the client of every purchase by hand: arrivals every 10 ms from 10 ms.
  std::int64_t retries = 0, retry_failed = 0, key_failed = 0, first_lost = 0;
  for (std::int64_t i = 1; i <= retry.requests; ++i) {
    for (bool replayed : {false, true}) {
      Time sent = milliseconds(10) * i;
      int k = 1;
      for (;; ++k) {
        const Time leaves = sent + delay + (replayed && k > 1 ? 0 : service);
        if (leaves < from || leaves >= to) break;  // answered
        if (k == 1 && !replayed) ++first_lost;
        if (k == attempts) {
          ++(replayed ? key_failed : retry_failed);
          break;
        }
        sent += timeout + (base << (k - 1));
      }
      if (!replayed) retries += k - 1;
    }
  }
  INFO("retries " << retries << " failed " << retry_failed << "/" << key_failed);
  REQUIRE(first_lost == 1000);  // answers leaving in [10 s, 20 s): purchases from 9.99 s
  REQUIRE(retries > 1000);
  CHECK(figure(retry, "double_charges") == retries);
  CHECK(figure(retry, "attempts") == retry.requests + retries);
  CHECK(figure(retry, "charged_but_failed") == retry_failed);
  CHECK(retry.count(Outcome::timeout) == retry_failed);
  const auto& key = row(r, "idempotency_key");
  CHECK(figure(key, "double_charges") == 0);
  CHECK(figure(key, "charges") == key.requests);
  CHECK(figure(key, "charged_but_failed") == key_failed);
  CHECK(key.count(Outcome::ok) == key.requests - key_failed);
  const auto& naive = row(r, "no_retry");
  CHECK(figure(naive, "charged_but_failed") == first_lost);
  CHECK(naive.count(Outcome::ok) == naive.requests - first_lost);
}

TEST_CASE(
    "with a random share p of answers lost, retry double charges p + p^2 + p^3 per purchase and "
    "the key none, for the same successes") {
  const double p = 0.3;
  Workload w = hldlab::testing::poisson_workload(200);
  // At most 100 ms: with 10 ms each way, every answer that is not lost beats the 1 s timeout.
  w.service = Distribution::uniform(static_cast<double>(milliseconds(10)),
                                    static_cast<double>(milliseconds(100)));
  const auto r = hldlab::testing::run_experiment(
      w, seconds(60), every_variant({{"max_attempts", 4}}), 11,
      inject_at(0, "drop_responses", {{"share", p}, {"duration", "1h"}}));
  const auto& retry = row(r, "retry");
  const auto& key = row(r, "idempotency_key");
  const auto& naive = row(r, "no_retry");
  const double n = static_cast<double>(retry.requests);
  // Extra charges X of a purchase: P(X >= k) = p^k for k = 1..3.
  const double mean = p + p * p + p * p * p;
  const double second_moment = p + 3 * p * p + 5 * p * p * p;
  const double sigma = std::sqrt(n * (second_moment - mean * mean));
  const auto doubles = static_cast<double>(figure(retry, "double_charges"));
  INFO("n " << n << " double charges " << doubles << " expected " << n * mean << " +- " << sigma);
  CHECK(std::abs(doubles - n * mean) < 4 * sigma);
  // Every retry of `retry` is a charge; every retry of the key variant is absorbed.
  CHECK(figure(retry, "double_charges") == figure(retry, "attempts") - retry.requests);
  CHECK(figure(key, "duplicates_absorbed") == figure(key, "attempts") - key.requests);
  CHECK(figure(key, "double_charges") == 0);
  CHECK(figure(key, "charges") == key.requests);
  // Both variants lose the same answers: same attempts, same successes, same failures.
  CHECK(figure(key, "attempts") == figure(retry, "attempts"));
  CHECK(key.count(Outcome::ok) == retry.count(Outcome::ok));
  CHECK(figure(key, "charged_but_failed") == retry.count(Outcome::timeout));
  const double failed = n * std::pow(p, 4);
  CHECK(std::abs(static_cast<double>(retry.count(Outcome::timeout)) - failed) <
        4 * std::sqrt(failed));
  // Without retries a share p fails, every one of them charged.
  const double naive_failed = static_cast<double>(figure(naive, "charged_but_failed"));
  CHECK(std::abs(naive_failed - n * p) < 4 * std::sqrt(n * p * (1 - p)));
  CHECK(naive.count(Outcome::timeout) == figure(naive, "charged_but_failed"));
  CHECK(key.count(Outcome::ok) > naive.count(Outcome::ok));
}

TEST_CASE("a retry later than key_ttl after the charge is charged again, an earlier one is not") {
  // Every answer lost, no jitter, base 1 s: attempts sent at 0, 2 s, 5 s and 10 s after the
  // purchase arrives; the first charge ends at 20 ms (10 ms network + 10 ms charge).
  const auto run = [](const char* ttl) {
    return constant_run(10, seconds(10), milliseconds(10),
                        {{"jitter", 0.0}, {"backoff_base", "1s"}, {"key_ttl", ttl}},
                        "drop_responses", {{"share", 1.0}, {"duration", "1h"}});
  };
  const auto check = [](const ExperimentResult& r, std::int64_t charges_each) {
    const auto& key = row(r, "idempotency_key");
    const std::int64_t n = key.requests;
    REQUIRE(n == 100);
    CHECK(figure(key, "charges") == charges_each * n);
    CHECK(figure(key, "double_charges") == (charges_each - 1) * n);
    CHECK(figure(key, "duplicates_absorbed") == (4 - charges_each) * n);
  };
  SECTION("a TTL of 1 h: the three retries are replayed") {
    check(run("1h"), 1);
  }
  SECTION("a TTL of 2.5 s: the retry at 2 s is replayed, those at 5 s and 10 s charge again") {
    // The first charge's key lives until 2.52 s; the one at 5.01 s until 7.52 s.
    check(run("2.5s"), 3);
  }
  SECTION("a TTL of 100 ms: every retry charges again, as without a key") {
    const auto r = run("100ms");
    check(r, 4);
    CHECK(figure(row(r, "idempotency_key"), "double_charges") ==
          figure(row(r, "retry"), "double_charges"));
    CHECK(figure(row(r, "idempotency_key"), "keys_stored") == 0);
  }
}

TEST_CASE(
    "retries during a slow charge are told to retry later by the key, charged again by the "
    "others") {
  // Charges take 3 s (30 ms x 100), the client gives up waiting after 1 s. No jitter, base 1 s:
  // attempt 2 reaches the service at 2.01 s, while the first charge runs until 3.01 s.
  const auto r =
      constant_run(10, seconds(10), milliseconds(30), {{"jitter", 0.0}, {"backoff_base", "1s"}},
                   "slow_service", {{"factor", 100.0}, {"duration", "1h"}});
  const std::int64_t n = row(r, "retry").requests;
  REQUIRE(n == 100);
  // retry: four attempts (0, 2, 5, 10 s), each a new 3 s charge, each timed out.
  const auto& retry = row(r, "retry");
  CHECK(figure(retry, "charges") == 4 * n);
  CHECK(figure(retry, "double_charges") == 3 * n);
  CHECK(retry.count(Outcome::timeout) == n);
  CHECK(figure(retry, "charged_but_failed") == n);
  // idempotency_key: 409 at 2.01 s (answered at once), back off 2 s, the attempt at 4.03 s
  // finds the charge done and gets its answer: ok, one charge.
  const auto& key = row(r, "idempotency_key");
  CHECK(figure(key, "charges") == n);
  CHECK(figure(key, "double_charges") == 0);
  CHECK(figure(key, "duplicates_absorbed") == 2 * n);
  CHECK(figure(key, "attempts") == 3 * n);
  CHECK(key.count(Outcome::ok) == n);
  CHECK(figure(key, "charged_but_failed") == 0);
  // key_after_charge: attempt 2 finds no key yet and charges again; attempt 3 (5.01 s) finds
  // the first charge's key and is replayed.
  const auto& late_key = row(r, "key_after_charge");
  CHECK(figure(late_key, "charges") == 2 * n);
  CHECK(figure(late_key, "double_charges") == n);
  CHECK(figure(late_key, "duplicates_absorbed") == n);
  CHECK(late_key.count(Outcome::ok) == n);
  // no_retry: every purchase times out at 1 s and is charged at 3.01 s.
  const auto& naive = row(r, "no_retry");
  CHECK(naive.count(Outcome::timeout) == n);
  CHECK(figure(naive, "charged_but_failed") == n);
}

TEST_CASE("concurrent duplicates are never charged twice under random loss, slowness and jitter") {
  for (std::uint64_t seed : {1, 2, 3}) {
    Workload w = hldlab::testing::poisson_workload(300);
    w.service = Distribution::lognormal(static_cast<double>(milliseconds(100)),
                                        static_cast<double>(milliseconds(2000)));
    const Map params{{"max_attempts", 6}, {"timeout", "500ms"}, {"backoff_base", "50ms"}};
    const auto r = hldlab::testing::run_experiment(
        w, seconds(30),
        {{"idempotency", "retry", params},
         {"idempotency", "key_after_charge", params},
         {"idempotency", "idempotency_key", params}},
        seed, [&](Experiment& e) {
          inject_at(seconds(5), "drop_responses", {{"share", 0.2}, {"duration", "20s"}})(e);
          inject_at(seconds(5), "slow_service", {{"factor", 3.0}, {"duration", "10s"}})(e);
        });
    const auto& key = row(r, "idempotency_key");
    INFO("seed " << seed << ": retry " << figure(row(r, "retry"), "double_charges")
                 << " key_after_charge " << figure(row(r, "key_after_charge"), "double_charges"));
    CHECK(figure(key, "double_charges") == 0);
    // Each purchase charged exactly once: the run drains until every attempt of a client that
    // gave up has been charged or refused (Context::hold).
    CHECK(key.unfinished == 0);
    CHECK(figure(key, "charges") == key.requests);
    CHECK(figure(key, "duplicates_absorbed") > 1000);
    CHECK(figure(row(r, "key_after_charge"), "double_charges") > 100);
    CHECK(figure(row(r, "retry"), "double_charges") >
          figure(row(r, "key_after_charge"), "double_charges"));
  }
}

TEST_CASE("a busy service refuses an attempt without charging it and without taking its key") {
  // One worker, no queue, one attempt: purchases every 100 ms, charges of 150 ms. Every other
  // purchase finds the worker busy (the previous charge runs until 50 ms after it arrives).
  const auto r = constant_run(10, seconds(10), milliseconds(150),
                              {{"workers", 1}, {"queue_limit", 0}, {"max_attempts", 1}});
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    REQUIRE(s.requests == 100);
    CHECK(s.count(Outcome::ok) == 50);
    CHECK(s.count(Outcome::error) == 50);
    CHECK(figure(s, "charges") == 50);
    CHECK(figure(s, "charged_but_failed") == 0);
  }
  CHECK(figure(row(r, "idempotency_key"), "keys_stored") == 50);
  CHECK(figure(row(r, "key_after_charge"), "keys_stored") == 50);
}

TEST_CASE("the key operation shows a key in progress, then done until its TTL runs out") {
  std::vector<Value> seen;
  // Purchase 0 arrives at 500 ms.
  hldlab::testing::run_experiment(
      hldlab::testing::constant_workload(2, seconds(2)), seconds(14),
      {{"idempotency", "idempotency_key", {{"key_ttl", "10s"}, {"timeout", "5s"}}}}, 1,
      [&seen](Experiment& e) {
        SystemSlot& s = *e.systems()[0];
        for (double t : {0.4, 1.0, 3.0, 12.0, 13.0})
          e.at(seconds(t), [&s, &seen] { seen.push_back(s.call("key", {{"purchase", 0}})); });
      });
  REQUIRE(seen.size() == 5);
  CHECK(seen[0]["state"].as_string() == "absent");
  CHECK(seen[1]["state"].as_string() == "in_progress");  // charging from 510 ms to 2.51 s
  CHECK(seen[2]["state"].as_string() == "done");
  CHECK(std::abs(seen[2]["expires_in"].as_double() - 9.51) < 1e-6);
  CHECK(seen[3]["state"].as_string() == "done");
  CHECK(seen[4]["state"].as_string() == "absent");  // expired at 12.51 s
}

TEST_CASE("after a warm-up the figures count only the purchases that arrived after it") {
  // Every answer lost: each purchase sends 4 attempts and times out. Purchases every 10 ms from
  // 10 ms to 10 s; the warm-up ends at 5 s, so the 501 purchases from 5.00 s on count, and none
  // of the attempts of the 499 before, although many are sent after 5 s.
  Experiment e({.duration = seconds(11), .warmup = seconds(5)});
  Workload w = hldlab::testing::constant_workload(0, milliseconds(5));
  w.arrivals.spikes.push_back({0, seconds(10), 100});
  e.set_workload(w);
  for (const char* v : kVariants) {
    SystemSlot& s = e.add(registry(), "idempotency", v);
    e.at(0, [&s] { s.inject("drop_responses", {{"share", 1.0}, {"duration", "1h"}}); });
  }
  const auto r = e.run();
  const double n = 501;
  for (const char* v : kVariants) {
    INFO(v);
    REQUIRE(row(r, v).requests == n);
    CHECK(figure(r, v, "charged_but_failed") == n);
  }
  CHECK(figure(r, "retry", "attempts") == 4 * n);
  CHECK(figure(r, "retry", "double_charges") == 3 * n);
  CHECK(figure(r, "idempotency_key", "charges") == n);
  CHECK(figure(r, "idempotency_key", "duplicates_absorbed") == 3 * n);
  CHECK(figure(r, "idempotency_key", "keys_stored") == 1000);  // the store is state, kept
}

TEST_CASE("a backoff base longer than the cap is refused") {
  Experiment e;
  REQUIRE_THROWS_WITH(
      e.add(registry(), "idempotency", "retry", {{"backoff_base", "10s"}, {"backoff_cap", "1s"}}),
      Catch::Contains("must not exceed backoff_cap"));
}

TEST_CASE("the idempotency script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("idempotency.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}
