#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::registry;
using hldlab::testing::row;

namespace {

const char* const kVariants[] = {"no_backoff", "exponential", "full_jitter", "equal_jitter",
                                 "decorrelated_jitter"};

/// `clients` requests on one row, all arriving within `clients` microseconds: the study's
/// "N clients start at the same time". Base 5 ms, cap 2 s, network 10 ms +- 2 ms per hop.
ExperimentResult burst(std::uint32_t clients, std::uint64_t seed, const Map& params = {}) {
  ExperimentConfig config;
  config.seed = seed;
  config.duration = seconds(1);
  config.drain = seconds(3600);
  Experiment e(config);
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

std::int64_t figure(const SystemResult& s, const char* name) {
  return s.figures.at(name).as_int();
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
  CHECK(c100 / c50 > 3.2);
  CHECK(c100 / c50 < 4.8);
  CHECK(c200 / c100 > 3.2);
  CHECK(c200 / c100 < 4.8);
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
  }
}

TEST_CASE("a contend burst reproduces the study and reports every batch") {
  ExperimentConfig config;
  config.duration = seconds(300);
  Experiment e(config);
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

ExperimentResult outage_run(std::int64_t max_attempts) {
  ExperimentConfig config;
  config.seed = 7;
  config.duration = seconds(30);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 50;
  w.keys = KeyDistribution::uniform(10);
  e.set_workload(w);
  for (const char* v : kVariants) {
    SystemSlot& s =
        e.add(registry(), "retry_backoff", v,
              {{"rows", 10}, {"base", "50ms"}, {"cap", "1s"}, {"max_attempts", max_attempts}});
    e.at(seconds(10), [&s] { s.inject("outage", {{"duration", "2s"}}); });
  }
  return e.run();
}

TEST_CASE("during an outage immediate retries multiply the failed calls hitting the database") {
  const auto r = outage_run(1000);
  const auto none = figure(row(r, "no_backoff"), "failed_calls");
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v << ": failed calls " << figure(s, "failed_calls") << " vs no backoff " << none);
    if (std::string(v) != "no_backoff") CHECK(4 * figure(s, "failed_calls") < none);
    // Everyone commits in the end, exactly once.
    CHECK(s.completed == s.requests);
    CHECK(s.count(Outcome::error) == 0);
    CHECK(figure(s, "calls") - figure(s, "failed_calls") == s.count(Outcome::ok));
  }
}

TEST_CASE("with few attempts immediate retries give up during an outage, backoff waits it out") {
  const auto r = outage_run(8);
  // Eight attempts without sleeping last about 8 x 40 ms: clients arriving in the first ~1.7 s of
  // the 2 s outage give up (about 50 rps x 1.7 s).
  const auto& none = row(r, "no_backoff");
  CHECK(figure(none, "gave_up") > 50);
  CHECK(figure(none, "gave_up") == none.count(Outcome::error));
  // Exponential: 7 sleeps of 100, 200, 400, 800 ms then 1 s each, over 5 s: longer than the outage.
  CHECK(figure(row(r, "exponential"), "gave_up") == 0);
}

TEST_CASE("a base longer than the cap is refused") {
  ExperimentConfig config;
  Experiment e(config);
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
