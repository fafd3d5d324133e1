#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// `systems` taking one id per ms (at whole milliseconds) for 1 s, each hit by `fault` at
/// 500.5 ms.
ExperimentResult one_id_per_ms(const std::vector<hldlab::testing::SystemSpec>& systems,
                               const std::string& fault, const Map& args) {
  return run_experiment(constant_workload(1000, 0), seconds(1), systems, 1,
                        [&fault, &args](Experiment& e) {
                          e.at(microseconds(500'500), [&e, fault, args] {
                            for (const auto& s : e.systems()) s->inject(fault, args);
                          });
                        });
}

}  // namespace

TEST_CASE("two auto-increment masters duplicate every id the smaller one hands out") {
  Experiment e({.seed = 7, .duration = seconds(10)});
  Workload w;
  w.arrivals.rps = 5000;
  e.set_workload(w);
  SystemSlot& naive = e.add(registry(), "snowflake_ids", "auto_increment");
  e.add(registry(), "snowflake_ids", "snowflake");
  e.add(registry(), "snowflake_ids", "sonyflake");
  const auto r = e.run();
  const List workers = naive.call("workers", {}).as_list();
  const std::int64_t a = workers[0]["issued"].as_int(), b = workers[1]["issued"].as_int();
  const double ids = figure(r, "auto_increment", "ids");
  REQUIRE(a + b == ids);
  REQUIRE(ids == row(r, "auto_increment").requests);
  // Both counters run 1, 2, 3, ...: the ids of the shorter run all exist twice.
  REQUIRE(figure(r, "auto_increment", "duplicates") == std::min(a, b));
  REQUIRE(std::min(a, b) > ids / 3);
  REQUIRE(figure(r, "snowflake", "duplicates") == 0);
  REQUIRE(figure(r, "sonyflake", "duplicates") == 0);
}

TEST_CASE(
    "snowflake and sonyflake issue two million ids across workers with no duplicate, "
    "k-sorted within one tick") {
  const auto r = run_experiment(
      hldlab::testing::poisson_workload(1e6, 0), seconds(2),
      {{"snowflake_ids", "snowflake", {{"workers", 8}, {"order_tolerance", "1ms"}}},
       {"snowflake_ids", "sonyflake", {{"workers", 100}, {"order_tolerance", "10ms"}}}},
      3);
  for (const char* v : {"snowflake", "sonyflake"}) {
    INFO(v);
    const auto& s = row(r, v);
    CHECK(s.requests > 1'990'000);
    CHECK(figure(r, v, "ids") == s.requests);
    CHECK(s.count(Outcome::ok) == s.requests);
    CHECK(figure(r, v, "duplicates") == 0);
    CHECK(s.figures.at("out_of_order").as_double() == 0.0);
  }
}

TEST_CASE(
    "snowflake gives a worker at most 4096 ids per millisecond; a burst waits exactly "
    "for the ticks it needs") {
  // At 500.5 ms tick 500 has used sequence 0: the burst takes the other 4095, all 4096 of tick
  // 501 and 1809 of tick 502, so it waits twice.
  const auto r = one_id_per_ms({{"snowflake_ids", "snowflake", {{"workers", 1}}}}, "burst",
                               {{"worker", 0}, {"count", 10000}});
  REQUIRE(figure(r, "snowflake", "max_ids_per_ms") == 4096);
  REQUIRE(figure(r, "snowflake", "waits") == 2);
  REQUIRE(figure(r, "snowflake", "ids") == row(r, "snowflake").requests + 10000);
  REQUIRE(figure(r, "snowflake", "duplicates") == 0);
}

TEST_CASE("sonyflake gives a machine at most 256 ids per 10 ms tick") {
  const auto r = run_experiment(constant_workload(100'000, 0), milliseconds(100),
                                {{"snowflake_ids", "sonyflake", {{"workers", 1}}}});
  const auto& s = row(r, "sonyflake");
  REQUIRE(s.requests == 9999);
  REQUIRE(s.completed == s.requests);
  REQUIRE(figure(r, "sonyflake", "max_ids_per_ms") == 256);
  REQUIRE(figure(r, "sonyflake", "duplicates") == 0);
  // 9999 ids at 256 per tick need 40 ticks: the last ids come out ~390 ms after the first.
  REQUIRE(s.max > 0.25);
}

TEST_CASE(
    "a clock set back 10 ms makes snowflake wait or refuse; ignoring it duplicates "
    "exactly the 10 reused milliseconds") {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* mode : {"wait", "refuse", "ignore"})
    systems.push_back({"snowflake_ids",
                       "snowflake",
                       {{"workers", 1}, {"on_backwards", mode}, {"max_wait", "50ms"}},
                       mode});
  const auto r = one_id_per_ms(systems, "clock_backwards", {{"worker", 0}, {"by", "10ms"}});
  // Last id before the jump: tick 500. Arrivals at 501..509 ms read ticks 491..499.
  CHECK(figure(r, "wait", "duplicates") == 0);
  CHECK(figure(r, "wait", "waits") == 1);  // the first one waits 9 ms, the others queue behind
  CHECK(figure(r, "wait", "refused") == 0);
  CHECK(row(r, "wait").count(Outcome::ok) == row(r, "wait").requests);
  CHECK(figure(r, "refuse", "duplicates") == 0);
  CHECK(figure(r, "refuse", "refused") == 9);
  CHECK(row(r, "refuse").count(Outcome::rejected) == 9);
  // Arrivals at 501..510 ms reuse ticks 491..500, each already holding sequence 0.
  CHECK(figure(r, "ignore", "duplicates") == 10);
}

TEST_CASE("a clock set back further than max_wait is refused instead of waited for") {
  const auto r =
      one_id_per_ms({{"snowflake_ids", "snowflake", {{"workers", 1}, {"max_wait", "5ms"}}}},
                    "clock_backwards", {{"worker", 0}, {"by", "10ms"}});
  // Waits of 9, 8, 7, 6 ms (arrivals 501..504) are refused; 5, 4, ... 1 ms are waited for.
  CHECK(figure(r, "snowflake", "refused") == 4);
  CHECK(figure(r, "snowflake", "waits") == 1);
  CHECK(figure(r, "snowflake", "duplicates") == 0);
}

TEST_CASE("a warm-up forgets the ids issued before it") {
  Experiment e({.duration = seconds(1), .warmup = milliseconds(500)});
  e.set_workload(constant_workload(1000, 0));
  e.add(registry(), "snowflake_ids", "auto_increment");
  const auto r = e.run();
  CHECK(figure(r, "auto_increment", "ids") == 500);  // the arrivals at 500..999 ms
}

TEST_CASE("an id decodes back into its tick, worker and sequence") {
  Experiment e({.duration = milliseconds(3)});
  e.set_workload(constant_workload(1000, 0));
  SystemSlot& s = e.add(registry(), "snowflake_ids", "snowflake", {{"workers", 1}});
  e.run();
  const auto ids = s.call("ids", {{"n", 1}}).as_list();
  REQUIRE(ids.size() == 1);
  const Value d = s.call("decode", {{"id", ids[0]}});
  REQUIRE(d["worker"].as_int() == 0);
  REQUIRE(d["sequence"].as_int() == 0);
  REQUIRE(d["time_ticks"].as_int() == 3'600'000 + 2);  // epoch offset 1 h + arrival at 2 ms
}

TEST_CASE("the snowflake_ids script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("snowflake_ids.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("snowflake_ids refuses too many workers for the layout and unknown workers") {
  Experiment e;
  REQUIRE_THROWS_WITH(e.add(registry(), "snowflake_ids", "snowflake", {{"workers", 2000}}),
                      Catch::Contains("at most 1024"));
  SystemSlot& s = e.add(registry(), "snowflake_ids", "snowflake", {{"workers", 2}});
  REQUIRE_THROWS_WITH(s.inject("clock_backwards", {{"worker", 5}, {"by", "1ms"}}),
                      Catch::Contains("worker 5 does not exist"));
}
