#include <catch2/catch.hpp>
#include <utility>
#include <vector>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// Reads only, on keys far below the key the tests write by hand.
Workload quiet() {
  Workload w;
  w.arrivals.rps = 10;
  w.keys = KeyDistribution::uniform(10);
  return w;
}

/// Writes and reads by 1000 clients on 50 keys, 200 per second, half of them writes; no traffic
/// after 59 s so that replication has finished when a 60 s run ends.
Workload busy() {
  Workload w;
  w.arrivals.rps = 200;
  w.arrivals.ramp_to_rps = 0;
  w.arrivals.ramp_start = w.arrivals.ramp_end = seconds(59);
  w.keys = KeyDistribution::uniform(50);
  w.write_share = 0.5;
  return w;
}

/// Both variants (50 ms replication delay) for 3 s of quiet traffic, with writes of key 1000
/// made by hand: (time, replica). `prepare` runs on each system before the run.
ExperimentResult hand_writes(const std::vector<std::pair<Time, int>>& writes,
                             void (*prepare)(SystemSlot&) = nullptr, Time warmup = 0) {
  Experiment e({.duration = seconds(3), .warmup = warmup});
  e.set_workload(quiet());
  for (const char* v : {"last_write_wins", "vector_clocks"}) {
    SystemSlot& s = e.add(registry(), "vector_clocks", v, {{"replication_delay", "50ms"}});
    if (prepare) prepare(s);
    for (const auto& [at, replica] : writes)
      e.at(at, [&s, replica = replica] { s.call("write", {{"replica", replica}, {"key", 1000}}); });
  }
  return e.run();
}

/// Replicas 0, 1, 0, 1, ... writing 100 ms apart from 1 s on: each write saw the previous one.
std::vector<std::pair<Time, int>> alternating(int n) {
  std::vector<std::pair<Time, int>> writes;
  for (int i = 0; i < n; ++i) writes.emplace_back(seconds(1) + milliseconds(100 * i), i % 2);
  return writes;
}

}  // namespace

TEST_CASE(
    "k concurrent writes on k replicas: last write wins keeps one and loses k-1, vector "
    "clocks keep all k as siblings") {
  for (int k : {2, 3, 5}) {
    Experiment e({.duration = seconds(3)});
    e.set_workload(quiet());
    const Map params{{"replicas", k}, {"replication_delay", "50ms"}};
    SystemSlot& lww = e.add(registry(), "vector_clocks", "last_write_wins", params);
    SystemSlot& vc = e.add(registry(), "vector_clocks", "vector_clocks", params);
    // At 1 s every replica takes a write on key 1000, 1 ms apart: all within the replication
    // delay, so none saw another.
    for (int i = 0; i < k; ++i)
      e.at(seconds(1) + milliseconds(i), [&lww, &vc, i] {
        for (SystemSlot* s : {&lww, &vc}) s->call("write", {{"replica", i}, {"key", 1000}});
      });
    Value before_merge;
    e.at(seconds(2), [&] {
      before_merge = vc.call("read", {{"replica", 0}, {"key", 1000}});
      vc.call("write", {{"replica", 0}, {"key", 1000}});  // read-modify-write merges them
    });
    const auto r = e.run();
    INFO(k << " replicas");
    CHECK(figure(r, "last_write_wins", "lost_updates") == k - 1);
    CHECK(figure(r, "last_write_wins", "conflicts_detected") == 0);
    CHECK(figure(r, "vector_clocks", "lost_updates") == 0);
    CHECK(figure(r, "vector_clocks", "conflicts_detected") == k);
    CHECK(figure(r, "vector_clocks", "max_siblings") == k);
    CHECK(before_merge.as_list().size() == static_cast<std::size_t>(k));
    CHECK(figure(r, "vector_clocks", "merges") == 1);
    // After the merge has replicated, every replica holds the one merged value.
    for (int i = 0; i < k; ++i)
      CHECK(vc.call("read", {{"replica", i}, {"key", 1000}}).as_list() ==
            List{static_cast<std::int64_t>(k)});
    // Last write wins: the write of the last replica (highest timestamp) everywhere.
    for (int i = 0; i < k; ++i)
      CHECK(lww.call("read", {{"replica", i}, {"key", 1000}}).as_list() ==
            List{static_cast<std::int64_t>(k - 1)});
  }
}

TEST_CASE("a write discarded on one replica is not lost when a surviving write was built on it") {
  // u on replica 1 at 1.000 s, w on replica 0 at 1.010 s (has not seen u), x on replica 1 at
  // 1.020 s (built on u, has not seen w). Replica 0 discards u when it arrives (w is newer),
  // but x, newest of all, carries u's effect and wins everywhere: only w is lost.
  const auto r = hand_writes({{seconds(1), 1}, {milliseconds(1010), 0}, {milliseconds(1020), 1}});
  CHECK(figure(r, "last_write_wins", "lost_updates") == 1);
  CHECK(figure(r, "vector_clocks", "lost_updates") == 0);
  // Replica 0 keeps u beside w until x (which covers u) replaces it: u, w, x were all siblings.
  CHECK(figure(r, "vector_clocks", "conflicts_detected") == 3);
}

TEST_CASE("writes that saw each other are never conflicts and never lost, in either variant") {
  const auto r = hand_writes(alternating(10));
  for (const char* v : {"last_write_wins", "vector_clocks"}) {
    INFO(v);
    CHECK(figure(r, v, "writes") == 10);
    CHECK(figure(r, v, "lost_updates") == 0);
    CHECK(figure(r, v, "conflicts_detected") == 0);
  }
}

TEST_CASE(
    "a replica whose clock is behind makes last write wins drop later sequential writes; "
    "vector clocks see no conflict and lose nothing") {
  // The alternating, causally ordered writes again: replica 1 stamps its writes 1 s early, so
  // each of its 5 writes loses to the write of replica 0 it was built on.
  const auto r = hand_writes(alternating(10), [](SystemSlot& s) {
    s.inject("clock_skew", {{"replica", 1}, {"behind", "1s"}});
  });
  CHECK(figure(r, "last_write_wins", "lost_updates") == 5);
  CHECK(figure(r, "vector_clocks", "lost_updates") == 0);
  CHECK(figure(r, "vector_clocks", "conflicts_detected") == 0);
}

TEST_CASE("a warm-up forgets the writes before it: only later writes and losses count") {
  // Two concurrent writes at 1 s (before the 1.5 s warm-up) and two at 2 s: last write wins
  // loses one of each pair, and counts only the second.
  const auto r = hand_writes(
      {{seconds(1), 0}, {milliseconds(1001), 1}, {seconds(2), 0}, {milliseconds(2001), 1}}, nullptr,
      milliseconds(1500));
  CHECK(figure(r, "last_write_wins", "writes") == 2);
  CHECK(figure(r, "last_write_wins", "lost_updates") == 1);
  CHECK(figure(r, "vector_clocks", "writes") == 2);
  CHECK(figure(r, "vector_clocks", "conflicts_detected") == 2);
}

TEST_CASE(
    "under concurrent traffic and a partition, last write wins loses updates that vector "
    "clocks keep, and both converge after the heal") {
  for (std::uint64_t seed : {1, 2}) {
    Experiment e({.seed = seed, .duration = seconds(60)});
    e.set_workload(busy());
    std::vector<SystemSlot*> slots;
    for (const char* v : {"last_write_wins", "vector_clocks"}) {
      SystemSlot& s = e.add(registry(), "vector_clocks", v, {{"replication_delay", "20ms"}});
      slots.push_back(&s);
      e.at(seconds(20), [&s] { s.inject("partition", {{"replica", 0}}); });
      e.at(seconds(30), [&s] { s.inject("heal", {}); });
    }
    const auto r = e.run();
    INFO("seed " << seed);
    const double writes = figure(r, "vector_clocks", "writes");
    CHECK(figure(r, "last_write_wins", "writes") == writes);
    CHECK(figure(r, "vector_clocks", "lost_updates") == 0);
    CHECK(figure(r, "last_write_wins", "lost_updates") > writes / 20);
    CHECK(figure(r, "vector_clocks", "conflicts_detected") > writes / 20);
    CHECK(figure(r, "vector_clocks", "sibling_reads") > 0);
    CHECK(figure(r, "vector_clocks", "merges") > 0);
    for (SystemSlot* s : slots) CHECK(s->call("divergent_keys", {}).as_int() == 0);
  }
}

TEST_CASE("the vector_clocks script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("vector_clocks.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("vector_clocks refuses a replica that does not exist") {
  Experiment e;
  SystemSlot& s = e.add(registry(), "vector_clocks", "vector_clocks", {{"replicas", 3}});
  REQUIRE_THROWS_WITH(s.inject("partition", {{"replica", 5}}),
                      Catch::Contains("replica 5 does not exist"));
  REQUIRE_THROWS(e.add(registry(), "vector_clocks", "last_write_wins", {{"replicas", 9}}));
}
