#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"no_backoff", "exponential", "full_jitter", "equal_jitter",
                                 "decorrelated_jitter"};

/// `clients` requests on one row, all arriving within `clients` microseconds: the study's
/// "N clients start at the same time". Base 5 ms, cap 2 s, network 10 ms +- 2 ms per hop.
ExperimentResult burst(std::uint32_t clients, std::uint64_t seed, const Map& params = {}) {
  Experiment e({.seed = seed, .duration = seconds(1), .drain = seconds(3600)});
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 0;
  w.arrivals.spikes.push_back({0, microseconds(clients), 1e6});
  w.keys = KeyDistribution::uniform(1);
  w.clients = clients;
  e.set_workload(w);
  for (const char* v : kVariants) e.add(registry(), "retry_backoff", v, params);
  return e.run();
}

}  // namespace

TEST_CASE(
    "at 100 contending clients full and equal jitter need less than half the calls of "
    "plain exponential backoff") {
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto r = burst(100, seed);
    const auto none = figure(row(r, "no_backoff"), "calls");
    const auto expo = figure(row(r, "exponential"), "calls");
    const auto full = figure(row(r, "full_jitter"), "calls");
    const auto equal = figure(row(r, "equal_jitter"), "calls");
    const auto decorrelated = figure(row(r, "decorrelated_jitter"), "calls");
    INFO("seed " << seed << ": none " << none << " exponential " << expo << " full " << full
                 << " equal " << equal << " decorrelated " << decorrelated);
    CHECK(2 * full < expo);
    CHECK(2 * equal < expo);
    CHECK(decorrelated < expo);
    CHECK(2 * expo < 3 * none);
    for (const char* v : kVariants) {
      const auto& s = row(r, v);
      INFO(v);
      // Same 100 clients for everyone; each commits exactly once: one successful write each.
      CHECK(s.requests == 100);
      CHECK(s.count(Outcome::ok) == 100);
      CHECK(figure(s, "calls") - figure(s, "failed_calls") == 100);
      CHECK(figure(s, "unfinished") == 0);
    }
  }
}

TEST_CASE("jittered backoff also finishes all the clients sooner than plain exponential backoff") {
  const auto r = burst(100, 1);
  const double expo = row(r, "exponential").figures.at("completion_ms").as_double();
  for (const char* v : {"full_jitter", "equal_jitter", "decorrelated_jitter"}) {
    const double t = row(r, v).figures.at("completion_ms").as_double();
    INFO(v << " " << t << " ms vs exponential " << expo << " ms");
    CHECK(t < expo / 4);
    // The last client finishes when the slowest request does: completion is the max latency.
    CHECK(std::abs(t / 1e3 - row(r, v).max) < 0.02 * row(r, v).max + 1e-3);
  }
}

TEST_CASE("without backoff the work grows as the square of the number of clients") {
  // One client wins per round and every loser competes in the next: about N^2/c calls.
  const auto calls = [](std::uint32_t n) {
    return static_cast<double>(figure(row(burst(n, 1), "no_backoff"), "calls"));
  };
  const double c50 = calls(50), c100 = calls(100), c200 = calls(200);
  INFO("50: " << c50 << " 100: " << c100 << " 200: " << c200);
  // a N^2 + b N calls: doubling N multiplies them by less than 4, and by nearly 4 as N grows
  // (over 100 seeds: 3.52 +- 0.09 from 50 to 100 clients, 3.64 +- 0.06 from 100 to 200).
  CHECK(c100 / c50 > 3);
  CHECK(c100 / c50 < 4);
  CHECK(c200 / c100 > 3);
  CHECK(c200 / c100 < 4);
  // Full jitter grows far slower than quadratically.
  const double j100 = static_cast<double>(figure(row(burst(100, 1), "full_jitter"), "calls"));
  const double j200 = static_cast<double>(figure(row(burst(200, 1), "full_jitter"), "calls"));
  CHECK(j200 / j100 < 3);
}

TEST_CASE("with one attempt each, exactly one call per client and at least the first write wins") {
  const auto r = burst(100, 4, {{"max_attempts", 1}});
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "calls") == 100);
    // Nothing can commit before the first write to arrive, so that one always commits.
    CHECK(s.count(Outcome::ok) >= 1);
    CHECK(s.count(Outcome::ok) + s.count(Outcome::error) == 100);
    CHECK(figure(s, "gave_up") == s.count(Outcome::error));
    CHECK(figure(s, "calls") - figure(s, "failed_calls") == s.count(Outcome::ok));
    // Every client meets the same network in every variant: without a retry (no backoff to
    // tell them apart) the variants are the same run.
    CHECK(s.count(Outcome::ok) == row(r, "no_backoff").count(Outcome::ok));
    CHECK(s.mean == row(r, "no_backoff").mean);
  }
}

TEST_CASE("a contend burst reproduces the study and reports every batch") {
  Experiment e({.duration = seconds(300)});
  Workload w;  // light background traffic on row 0; the burst contends on row 1
  w.arrivals.rps = 1;
  w.keys = KeyDistribution::uniform(1);
  e.set_workload(w);
  std::vector<SystemSlot*> slots;
  for (const char* v : {"exponential", "full_jitter"}) {
    SystemSlot& s = e.add(registry(), "retry_backoff", v, {{"rows", 2}});
    slots.push_back(&s);
    e.at(seconds(1), [&s] { s.call("contend", {{"clients", 100}, {"row", 1}}); });
  }
  e.run();
  const Value expo = slots[0]->call("batches", {}).as_list().at(0);
  const Value full = slots[1]->call("batches", {}).as_list().at(0);
  for (const Value* b : {&expo, &full}) {
    CHECK((*b)["succeeded"].as_int() == 100);
    CHECK((*b)["unfinished"].as_int() == 0);
    CHECK((*b)["completion_ms"].as_double() > 0);
  }
  INFO("exponential " << expo["calls"].as_int() << " full jitter " << full["calls"].as_int());
  CHECK(2 * full["calls"].as_int() < expo["calls"].as_int());
  REQUIRE_THROWS_WITH(slots[0]->call("contend", {{"row", 5}}),
                      Catch::Contains("row 5 does not exist"));
}

/// 50 rps over 10 rows; the database refuses writes for `outage` seconds from 10 s.
ExperimentResult outage_run(std::int64_t max_attempts, double outage) {
  const Map params = {
      {"rows", 10}, {"base", "50ms"}, {"cap", "1s"}, {"max_attempts", max_attempts}};
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"retry_backoff", v, params});
  return hldlab::testing::run_experiment(hldlab::testing::poisson_workload(50, milliseconds(1), 10),
                                         seconds(30), systems, 7, [outage](Experiment& e) {
                                           e.at(seconds(10), [&e, outage] {
                                             for (auto& s : e.systems())
                                               s->inject("outage", {{"duration", outage}});
                                           });
                                         });
}

TEST_CASE("during an outage immediate retries multiply the failed calls hitting the database") {
  // Retrying at once, a client calls every 4 hops (~40 ms): the clients arriving during a 5 s
  // outage make about 50 rps x (5 s)^2 / (2 x 40 ms) = 15 600 failed calls. Backing off (sleeps
  // doubling from 50 ms to the 1 s cap), a client calls about ten times in 5 s at most. Over 100
  // seeds the ratio is 7.9 +- 0.14 for full jitter (the closest), 10.9 for plain exponential.
  const auto r = outage_run(1000, 5);
  const auto none = figure(row(r, "no_backoff"), "failed_calls");
  CHECK(none > 15'000);
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v << ": failed calls " << figure(s, "failed_calls") << " vs no backoff " << none);
    if (std::string(v) != "no_backoff") {
      CHECK(5 * figure(s, "failed_calls") < none);
      // The price: the clients caught by the outage wait longer once it is over.
      CHECK(s.mean > row(r, "no_backoff").mean);
    }
    // Everyone commits in the end, exactly once.
    CHECK(s.completed == s.requests);
    CHECK(s.count(Outcome::error) == 0);
    CHECK(figure(s, "calls") - figure(s, "failed_calls") == s.count(Outcome::ok));
  }
}

TEST_CASE("with few attempts immediate retries give up during an outage, backoff waits it out") {
  const auto r = outage_run(8, 2);
  // Eight attempts without sleeping last about 8 x 40 ms: the clients arriving in the first
  // ~1.7 s of the 2 s outage give up, Poisson(50 rps x 1.7 s = 84) of them: over 40 (5 standard
  // deviations below).
  const auto& none = row(r, "no_backoff");
  CHECK(figure(none, "gave_up") > 40);
  CHECK(figure(none, "gave_up") == none.count(Outcome::error));
  // Exponential: 7 sleeps of 100, 200, 400, 800 ms then 1 s each, over 4.5 s: longer than the
  // outage, whoever meets it.
  CHECK(figure(row(r, "exponential"), "gave_up") == 0);
}

TEST_CASE("a base longer than the cap is refused") {
  Experiment e;
  REQUIRE_THROWS_WITH(
      e.add(registry(), "retry_backoff", "full_jitter", {{"base", "3s"}, {"cap", "1s"}}),
      Catch::Contains("must not exceed cap"));
}

TEST_CASE("the retry_backoff script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("retry_backoff.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 8);
  REQUIRE(r.exit_code() == 0);
}
