#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::registry;
using hldlab::testing::row;

namespace {

const char* const kVariants[] = {"async_replica_reads", "read_your_writes", "monotonic_reads",
                                 "semi_sync", "sync"};

std::int64_t figure(const ExperimentResult& r, const std::string& label, const std::string& name) {
  return row(r, label).figures.at(name).as_int();
}

/// 1000 clients, 5 keys, 10% writes at 1000 rps: the script's traffic.
ExperimentResult reads_run(std::uint64_t seed, const Map& params = {}) {
  ExperimentConfig config;
  config.seed = seed;
  config.duration = seconds(30);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 1000;
  w.keys = KeyDistribution::uniform(5);
  w.clients = 1000;
  w.write_share = 0.1;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  e.set_workload(w);
  for (const char* v : kVariants) e.add(registry(), "replication", v, params);
  return e.run();
}

/// Only writes, one every millisecond, a constant replica lag of 100 ms, a crash at 30 s.
ExperimentResult crash_run() {
  ExperimentConfig config;
  config.duration = seconds(40);
  Experiment e(config);
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 1000;
  w.write_share = 1;
  w.service = Distribution::constant(static_cast<double>(microseconds(500)));
  e.set_workload(w);
  const Map constant_lag{{"lag_median", "100ms"}, {"lag_p99", "100ms"}, {"failover_after", "2s"}};
  for (const char* v : {"async_replica_reads", "semi_sync", "sync"}) {
    SystemSlot& s = e.add(registry(), "replication", v, constant_lag);
    e.at(seconds(30), [&s] { s.inject("crash_leader", {}); });
  }
  return e.run();
}

}  // namespace

TEST_CASE(
    "reads from async replicas miss the client's own writes; leader routing and sync fix it") {
  for (std::uint64_t seed : {1, 2}) {
    const auto r = reads_run(seed);
    INFO("seed " << seed);
    CHECK(figure(r, "async_replica_reads", "stale_reads") > 20);
    CHECK(figure(r, "read_your_writes", "stale_reads") == 0);
    CHECK(figure(r, "sync", "stale_reads") == 0);
    // Semi-sync waits for one replica only: reads from the other can still be stale, less often.
    CHECK(figure(r, "semi_sync", "stale_reads") > 0);
    CHECK(figure(r, "semi_sync", "stale_reads") < figure(r, "async_replica_reads", "stale_reads"));
    // Leader routing pays with leader load: every read within 2 s of the client's last write.
    CHECK(figure(r, "read_your_writes", "leader_reads") > 1000);
    CHECK(figure(r, "async_replica_reads", "leader_reads") == 0);
    CHECK(row(r, "sync").requests == row(r, "async_replica_reads").requests);
  }
}

TEST_CASE("pinning a client to one replica stops reads going back in time, not stale reads") {
  for (std::uint64_t seed : {1, 2}) {
    const auto r = reads_run(seed);
    INFO("seed " << seed);
    CHECK(figure(r, "async_replica_reads", "non_monotonic") > 20);
    CHECK(figure(r, "monotonic_reads", "non_monotonic") == 0);
    // Its one replica still lags the leader: read-your-writes is a different guarantee.
    CHECK(figure(r, "monotonic_reads", "stale_reads") > 20);
  }
}

TEST_CASE("without replica lag no variant ever reads stale data and writes cost only the leader") {
  const auto r = reads_run(3, {{"lag_median", 0}, {"lag_p99", 0}});
  for (const char* v : kVariants) {
    INFO(v);
    CHECK(figure(r, v, "stale_reads") == 0);
    CHECK(figure(r, v, "non_monotonic") == 0);
    CHECK(row(r, v).figures.at("write_ms").as_double() == Approx(1.0));
  }
}

TEST_CASE("semi-sync writes wait for the fastest replica and sync writes for the slowest") {
  const auto r = reads_run(1);
  const double async_ms = row(r, "async_replica_reads").figures.at("write_ms").as_double();
  const double semi_ms = row(r, "semi_sync").figures.at("write_ms").as_double();
  const double sync_ms = row(r, "sync").figures.at("write_ms").as_double();
  CHECK(async_ms == Approx(1.0));  // the leader's own commit
  // Median lag 50 ms per replica: the faster of two is below it, the slower above it.
  CHECK(semi_ms > 10);
  CHECK(semi_ms < 50);
  CHECK(sync_ms > 50);
  CHECK(sync_ms > 2 * semi_ms);
  CHECK(row(r, "sync").p99 > row(r, "async_replica_reads").p99 * 50);
}

TEST_CASE("a leader crash loses exactly the async writes acked within the replica lag") {
  const auto r = crash_run();
  // One write per ms and 100 ms of lag: the writes that arrived in [29.9 s, 30 s) were acked
  // (0.5 ms later) and no replica had them when the leader died at 30 s.
  CHECK(figure(r, "async_replica_reads", "lost_writes") == 100);
  CHECK(figure(r, "semi_sync", "lost_writes") == 0);
  CHECK(figure(r, "sync", "lost_writes") == 0);
  // No leader for the 2 s of failover: the 2000 writes of [30 s, 32 s) fail. Semi-sync and
  // sync also fail the 100 writes still waiting for a replica ack: never acked, never lost.
  CHECK(row(r, "async_replica_reads").count(Outcome::error) == 2000);
  CHECK(row(r, "semi_sync").count(Outcome::error) == 2100);
  CHECK(row(r, "sync").count(Outcome::error) == 2100);
  CHECK(row(r, "async_replica_reads").metrics.at("lost_writes").as_double() == 100);
}

TEST_CASE("the replication script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("replication.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 10);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("a lag P99 below the median is refused") {
  ExperimentConfig config;
  Experiment e(config);
  REQUIRE_THROWS_WITH(
      e.add(registry(), "replication", "sync", {{"lag_median", "1s"}, {"lag_p99", "10ms"}}),
      Catch::Contains("lag_p99 must be at least lag_median"));
}
