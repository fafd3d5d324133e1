#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab/runtime/checkers.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"async_replica_reads", "read_your_writes", "monotonic_reads",
                                 "semi_sync", "sync"};

/// 1000 clients, 5 keys, 10% writes at 1000 rps: the script's traffic.
ExperimentResult reads_run(std::uint64_t seed, const Map& params = {}) {
  Workload w = hldlab::testing::poisson_workload(1000, milliseconds(1), 5);
  w.clients = 1000;
  w.write_share = 0.1;
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"replication", v, params});
  return run_experiment(w, seconds(30), systems, seed);
}

/// Only writes, one every millisecond, a constant replica lag of 100 ms, a crash at 30 s.
ExperimentResult crash_run() {
  Workload w = hldlab::testing::constant_workload(1000, microseconds(500));
  w.write_share = 1;
  const Map constant_lag{{"lag_median", "100ms"}, {"lag_p99", "100ms"}, {"failover_after", "2s"}};
  return run_experiment(w, seconds(40),
                        {{"replication", "async_replica_reads", constant_lag},
                         {"replication", "semi_sync", constant_lag},
                         {"replication", "sync", constant_lag}},
                        1, [](Experiment& e) {
                          for (const auto& s : e.systems()) {
                            SystemSlot* slot = s.get();
                            e.at(seconds(30), [slot] { slot->inject("crash_leader", {}); });
                          }
                        });
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
    // Leader routing pays with leader load: a read goes to the leader when its replica has not
    // applied the client's last write. Both variants draw the same replicas and lags (common
    // random numbers), so every read async served stale went to the leader here, and more
    // (a write of another key, or not acked yet, also sends the read to the leader).
    CHECK(figure(r, "read_your_writes", "leader_reads") >=
          figure(r, "async_replica_reads", "stale_reads"));
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
    CHECK(figure(r, v, "write_ms") == Approx(1.0));
  }
}

TEST_CASE("semi-sync writes wait for the fastest replica and sync writes for the slowest") {
  // One write a second, a fresh lag per write (lag_period 1 ms) on each of two replicas: the
  // lags X1, X2 are independent lognormals, median 50 ms and P99 500 ms (mu = ln 50 ms,
  // sigma = ln 10 / 2.326 = 0.99). A second between writes is longer than all but 0.1% of the
  // lags, so in-order apply (an entry waits for the one before) adds well under a millisecond.
  // For iid lognormals E[max(X1, X2)^k] = 2 e^(k mu + k^2 sigma^2 / 2) Phi(k sigma / sqrt 2) and
  // E[min^k] the same with Phi(-k sigma / sqrt 2): E[min] = 39.5 ms, E[max] = 123.7 ms (the
  // medians of min and max are 29.2 and 85.7 ms: the mean of min is not below the median lag
  // by much, which is why comparing it with 50 ms was luck). Means of 2999 writes: within 5
  // standard errors.
  Workload w = hldlab::testing::constant_workload(1, milliseconds(1));
  w.write_share = 1;
  const Map fresh_lags{{"lag_period", "1ms"}};
  const auto r = run_experiment(w, seconds(3000),
                                {{"replication", "async_replica_reads", fresh_lags},
                                 {"replication", "semi_sync", fresh_lags},
                                 {"replication", "sync", fresh_lags}});
  const double mu = std::log(50.0), sigma = std::log(10.0) / kNormalP99;
  auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  auto moment = [&](int k, bool max) {
    const double z = k * sigma / std::sqrt(2.0);
    return 2 * std::exp(k * mu + k * k * sigma * sigma / 2) * phi(max ? z : -z);
  };
  const double writes = static_cast<double>(row(r, "sync").requests);
  REQUIRE(writes == 2999);  // at 1 s, 2 s, ..., 2999 s
  for (bool max : {false, true}) {
    const double mean = moment(1, max), sd = std::sqrt(moment(2, max) - mean * mean);
    const double measured = figure(r, max ? "sync" : "semi_sync", "write_ms");
    INFO((max ? "sync" : "semi_sync") << ": mean write " << measured << " ms, theory " << mean
                                      << " ms, standard error " << sd / std::sqrt(writes));
    CHECK(std::abs(measured - mean) < 5 * sd / std::sqrt(writes));
  }
  CHECK(moment(1, false) == Approx(39.5).epsilon(0.01));
  CHECK(moment(1, true) == Approx(123.7).epsilon(0.01));
  CHECK(figure(r, "async_replica_reads", "write_ms") == Approx(1.0));
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
  Experiment e;
  REQUIRE_THROWS_WITH(
      e.add(registry(), "replication", "sync", {{"lag_median", "1s"}, {"lag_p99", "10ms"}}),
      Catch::Contains("lag_p99 must be at least lag_median"));
}

// ---- linearizability, through the runtime's checker on recorded histories ----------------------

namespace {

/// A write or a read of `key` by `client` at `at`, delivered by hand.
struct Step {
  Time at;
  Op op;
  std::uint64_t key;
  std::uint32_t client;
};

/// One system, recording its history, fed `steps`.
LinearizabilityResult check_steps(const std::string& variant, const Map& params,
                                  const std::vector<Step>& steps) {
  Experiment e({.duration = seconds(5)});
  // The workload's first request would come at 5 s: only `steps` are sent.
  e.set_workload(hldlab::testing::constant_workload(0.2, milliseconds(1), 1));
  SystemSlot& slot = e.add(registry(), "replication", variant, params, "", 1000);
  std::uint64_t id = 0;
  for (const Step& s : steps)
    e.at(s.at, [&slot, s, n = id++] {
      Request r;
      r.id = 1'000'000 + n;
      r.key = s.key;
      r.arrival = s.at;
      r.service = milliseconds(1);
      r.client = s.client;
      r.op = s.op;
      slot.deliver(r);
    });
  e.run();
  return check_linearizable(*slot.history());
}

/// The script's Part 3 traffic, every system recording; `crashes`: the leader crashes at 3 s,
/// 5.5 s and 8 s.
std::vector<LinearizabilityResult> history_run(
    std::uint64_t seed, const std::vector<std::pair<std::string, Map>>& systems, bool crashes) {
  Experiment e({.seed = seed, .duration = seconds(10)});
  Workload w = hldlab::testing::poisson_workload(500, milliseconds(1), 20);
  w.clients = 100;
  w.write_share = 0.1;
  e.set_workload(w);
  std::vector<SystemSlot*> slots;
  int n = 0;
  for (const auto& [variant, params] : systems)
    slots.push_back(
        &e.add(registry(), "replication", variant, params, "s" + std::to_string(n++), 100000));
  if (crashes)
    for (Time t : {seconds(3), seconds(5.5), seconds(8)}) inject_everywhere(e, t, "crash_leader");
  e.run();
  std::vector<LinearizabilityResult> out;
  for (SystemSlot* s : slots) out.push_back(check_linearizable(*s->history()));
  return out;
}

}  // namespace

TEST_CASE(
    "a read from an async replica that has not applied an acknowledged write is not "
    "linearizable: the witness is that write and that read") {
  // One replica, 100 ms behind. The write (1 ms of leader work) is acked at 1.001 s; the read
  // at 1.05 s goes to the replica, which applies the write at 1.1 s: it returns nothing.
  const Map lag{{"replicas", 1}, {"lag_median", "100ms"}, {"lag_p99", "100ms"}};
  const std::vector<Step> steps = {{seconds(1), Op::write, 7, 1}, {seconds(1.05), Op::read, 7, 2}};
  const auto async = check_steps("async_replica_reads", lag, steps);
  REQUIRE(async.verdict == Verdict::invalid);
  CHECK(async.key == 7);
  REQUIRE(async.witness.size() == 2);
  CHECK(async.witness[0].kind == HistoryKind::write);
  CHECK(async.witness[0].completed == seconds(1.001));
  CHECK(async.witness[1].kind == HistoryKind::read);
  CHECK(async.witness[1].value == History::kNoValue);
  // Sync acks at 1.1 s: the read is concurrent with the write and may miss it.
  CHECK(check_steps("sync", lag, steps).verdict == Verdict::valid);
  // The leader's committed entries: async commits at once, the read sees the write.
  Map leader = lag;
  leader["read_from"] = "leader";
  CHECK(check_steps("async_replica_reads", leader, steps).verdict == Verdict::valid);
}

TEST_CASE(
    "the checker finds replica reads non-linearizable, async or sync, and leader reads of "
    "committed entries linearizable; across failovers only async loses that") {
  const Map leader{{"read_from", "leader"}};
  for (std::uint64_t seed : {1, 2, 3}) {
    INFO("seed " << seed);
    const auto plain = history_run(seed,
                                   {{"async_replica_reads", {}},
                                    {"sync", {}},
                                    {"async_replica_reads", leader},
                                    {"sync", leader}},
                                   false);
    CHECK(plain[0].verdict == Verdict::invalid);
    CHECK(plain[1].verdict == Verdict::invalid);
    CHECK(plain[2].verdict == Verdict::valid);
    CHECK(plain[3].verdict == Verdict::valid);
    Map slow_leader = leader;
    slow_leader["lag_median"] = "200ms";
    const auto crashed = history_run(
        seed,
        {{"async_replica_reads", slow_leader}, {"semi_sync", slow_leader}, {"sync", slow_leader}},
        true);
    CHECK(crashed[0].verdict == Verdict::invalid);
    CHECK(crashed[1].verdict == Verdict::valid);
    CHECK(crashed[2].verdict == Verdict::valid);
  }
}

TEST_CASE("recording a history changes nothing the lesson measures") {
  for (const char* variant : kVariants) {
    INFO(variant);
    ExperimentResult results[2];
    for (int recording = 0; recording < 2; ++recording) {
      Experiment e({.duration = seconds(5)});
      Workload w = hldlab::testing::poisson_workload(500, milliseconds(1), 5);
      w.write_share = 0.1;
      e.set_workload(w);
      e.add(registry(), "replication", variant, {}, "", recording ? 100000 : 0);
      inject_everywhere(e, seconds(2), "crash_leader");
      results[recording] = e.run();
    }
    const SystemResult& off = results[0].systems[0];
    const SystemResult& on = results[1].systems[0];
    CHECK(off.figures == on.figures);
    CHECK(off.completed == on.completed);
    CHECK(off.p99 == on.p99);
  }
}
