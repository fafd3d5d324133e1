#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"in_memory_queue",  "round_robin",     "commit_before",  "acks_1",
                                 "unclean_election", "eager_rebalance", "partitioned_log"};

/// Records at a constant `rps` from 1/rps up to `traffic`, all of key `key` unless `keys` > 1
/// (uniform), each taking `service` to process; every variant in `variants` with `params`;
/// `setup` schedules faults and operations. The experiment lasts `length` (at least traffic).
template <std::size_t N>
ExperimentResult constant_run(double rps, Time traffic, Time service, const Map& params,
                              const char* const (&variants)[N],
                              const std::function<void(Experiment&)>& setup = {}, Time length = 0,
                              std::uint64_t keys = 1) {
  Workload w = hldlab::testing::constant_workload(0, service, keys);
  w.arrivals.spikes.push_back({0, traffic, rps});
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : variants) systems.push_back({"kafka_log", v, params});
  return hldlab::testing::run_experiment(w, std::max(length, traffic + seconds(1)), systems, 1,
                                         setup);
}

/// Run `op` with `args` on every system at `at`.
void call_everywhere(Experiment& e, Time at, const std::string& op, const Map& args = {}) {
  e.at(at, [&e, op, args] {
    for (const auto& s : e.systems()) s->call(op, args);
  });
}

}  // namespace

TEST_CASE(
    "a write is acknowledged after the hop with acks=1 and the queue, after the replication lag "
    "with acks=all; every record is consumed once") {
  const auto r = constant_run(100, seconds(2), milliseconds(1), {}, kVariants, {}, 0, 1000);
  for (const char* v : kVariants) {
    INFO(v);
    const auto& s = row(r, v);
    REQUIRE(s.requests == 200);
    CHECK(s.count(Outcome::ok) == 200);
    CHECK(figure(s, "produced") == 200);
    CHECK(figure(s, "consumed") == 200);
    CHECK(figure(s, "duplicates") == 0);
    CHECK(figure(s, "acked_lost") == 0);
    CHECK(figure(s, "out_of_order") == 0);
    const bool fast = std::string(v) == "acks_1" || std::string(v) == "in_memory_queue";
    CHECK(s.max == Approx(fast ? 0.001 : 0.021).epsilon(0.01));
  }
  // Consumers read up to the high watermark: 20 ms of replication, then 1 ms of work.
  CHECK(figure(r, "partitioned_log", "lag_max") == Approx(0.021).epsilon(0.01));
  CHECK(figure(r, "in_memory_queue", "lag_max") == Approx(0.001).epsilon(0.01));
}

TEST_CASE(
    "a replay re-reads exactly the records appended since `from`; the queue has none left; a "
    "short retention keeps only its window") {
  // 100 records/s from 10 ms to 4 s; at 3 s the group rewinds to 1 s: the records of
  // 1.00 .. 2.99 s (200) are processed again. The queue deleted them. With 1.5 s of retention
  // the log still has those of 1.5 .. 2.99 s (150): 50 are gone.
  const char* const variants[] = {"in_memory_queue", "partitioned_log"};
  auto run = [&](const char* retention) {
    return constant_run(
        100, seconds(4), milliseconds(1), {{"replication_lag", "0s"}, {"retention", retention}},
        variants,
        [](Experiment& e) {
          call_everywhere(e, seconds(3), "replay", {{"from", 1.0}});
        },
        0, 1000);
  };
  const auto r = run("1h");
  CHECK(figure(r, "partitioned_log", "replayed") == 200);
  CHECK(figure(r, "partitioned_log", "unrecoverable") == 0);
  CHECK(figure(r, "partitioned_log", "consumed") == 400);
  CHECK(figure(r, "partitioned_log", "duplicates") == 0);
  CHECK(figure(r, "in_memory_queue", "replayed") == 0);
  CHECK(figure(r, "in_memory_queue", "unrecoverable") == 200);
  const auto short_retention = run("1.5s");
  CHECK(figure(short_retention, "partitioned_log", "replayed") == 150);
  CHECK(figure(short_retention, "partitioned_log", "unrecoverable") == 50);
}

TEST_CASE(
    "round-robin partitioning of one key over two partitions reorders exactly 9 of every 20 "
    "records; key partitioning none") {
  // One key, 40 records in the first 0.2 s while the only consumer is down (it is back at 1 s,
  // before its session expires). Round robin put seq 0, 2, .., 38 in partition 0 and 1, .., 39
  // in partition 1; the consumer takes a batch of 10 from each in turn: 0..18 even, then 1..19
  // odd (1..17 come after 18: 9 late), then 20..38, then 21..39 (9 late again).
  const char* const variants[] = {"round_robin", "partitioned_log"};
  const auto r = constant_run(200, milliseconds(200), milliseconds(1),
                              {{"partitions", 2}, {"consumers", 1}, {"replication_lag", "0s"}},
                              variants, [](Experiment& e) {
                                hldlab::testing::inject_everywhere(
                                    e, 0, "crash_consumer", {{"consumer", 0}, {"duration", "1s"}});
                              });
  REQUIRE(row(r, "round_robin").requests == 40);
  CHECK(figure(r, "round_robin", "out_of_order") == 18);
  CHECK(figure(r, "round_robin", "consumed") == 40);
  CHECK(figure(r, "partitioned_log", "out_of_order") == 0);
  CHECK(figure(r, "partitioned_log", "consumed") == 40);
  CHECK(figure(r, "partitioned_log", "rebalances") == 0);  // back before its session expired
}

TEST_CASE("competing consumers on a queue reorder a key's messages when their work differs") {
  // Messages of one key every 2 ms, work 1 ms or 5 ms: with one consumer the queue keeps the
  // order; with three, a short message overtakes a long one taken just before it.
  Workload w = hldlab::testing::constant_workload(500, milliseconds(1), 1);
  w.service = Distribution::bimodal(static_cast<double>(milliseconds(1)),
                                    static_cast<double>(milliseconds(5)), 0.3);
  const auto r = hldlab::testing::run_experiment(
      w, seconds(2),
      {{"kafka_log", "in_memory_queue", {{"consumers", 1}}, "one"},
       {"kafka_log", "in_memory_queue", {{"consumers", 3}}, "three"},
       {"kafka_log", "partitioned_log", {{"consumers", 3}}, "log"}});
  CHECK(figure(r, "one", "out_of_order") == 0);
  CHECK(figure(r, "three", "out_of_order") > 50);
  CHECK(figure(r, "log", "out_of_order") == 0);
}

TEST_CASE(
    "consumers beyond the partition count are idle: nine consumers on six partitions measure "
    "exactly what six do") {
  const char* const variants[] = {"partitioned_log"};
  auto run = [&](int consumers) {
    return constant_run(600, seconds(5), milliseconds(8), {{"consumers", consumers}}, variants, {},
                        0, 10000);
  };
  const auto six = run(6), nine = run(9), three = run(3);
  const auto& s6 = row(six, "partitioned_log");
  const auto& s9 = row(nine, "partitioned_log");
  CHECK(figure(s9, "idle_consumers") == 3);
  CHECK(figure(s6, "idle_consumers") == 0);
  CHECK(s9.figures.at("lag_max") == s6.figures.at("lag_max"));
  CHECK(s9.figures.at("lag_p99") == s6.figures.at("lag_p99"));
  CHECK(s9.figures.at("consumed") == s6.figures.at("consumed"));
  // Three consumers cannot keep up with 600 records/s at 8 ms each (375/s).
  CHECK(figure(row(three, "partitioned_log"), "lag_max") > 10 * figure(s6, "lag_max"));
}

TEST_CASE(
    "an eager rebalance pauses every partition for a round; a cooperative one only the "
    "partitions that move, for two rounds (one when their owner is gone)") {
  const char* const variants[] = {"eager_rebalance", "partitioned_log"};
  SECTION("a fourth consumer joins three on six partitions: one partition moves") {
    const auto r = constant_run(
        100, seconds(3), milliseconds(1), {}, variants,
        [](Experiment& e) { call_everywhere(e, seconds(1), "add_consumer"); }, 0, 1000);
    CHECK(figure(r, "eager_rebalance", "rebalances") == 1);
    CHECK(figure(r, "eager_rebalance", "rebalance_pause") == Approx(6.0));
    CHECK(figure(r, "partitioned_log", "rebalance_pause") == Approx(2.0));
  }
  SECTION("one of three crashes: after its 3 s session, its two partitions move") {
    const auto r = constant_run(
        100, seconds(3), milliseconds(1), {}, variants,
        [](Experiment& e) {
          hldlab::testing::inject_everywhere(e, seconds(1), "crash_consumer",
                                             {{"consumer", 1}, {"duration", "1h"}});
        },
        seconds(6), 1000);
    CHECK(figure(r, "eager_rebalance", "rebalance_pause") == Approx(6.0));
    CHECK(figure(r, "partitioned_log", "rebalance_pause") == Approx(2.0));
    for (const char* v : variants) {
      INFO(v);
      CHECK(figure(r, v, "consumed") == 300);
      CHECK(figure(r, v, "skipped") == 0);
    }
  }
}

TEST_CASE(
    "a consumer crash after j of a batch of 10: committing after processing runs exactly j "
    "again, committing before skips exactly 10 - j") {
  // 20 records at 10 .. 200 ms while the consumer is down (back at 1 s, before its session
  // expires); one partition, 10 ms of work each. Batch 1 (records 1-10) ends at 1.10 s; batch 2
  // has processed 5 records at 1.150 s; the consumer crashes at 1.1505 s, back at 1.2505 s.
  const char* const variants[] = {"commit_before", "partitioned_log"};
  const auto r =
      constant_run(100, milliseconds(200), milliseconds(10),
                   {{"partitions", 1}, {"consumers", 1}, {"replication_lag", "0s"}}, variants,
                   [](Experiment& e) {
                     hldlab::testing::inject_everywhere(e, 0, "crash_consumer",
                                                        {{"consumer", 0}, {"duration", "1s"}});
                     hldlab::testing::inject_everywhere(e, microseconds(1150500), "crash_consumer",
                                                        {{"consumer", 0}, {"duration", "100ms"}});
                   });
  const auto& after = row(r, "partitioned_log");
  REQUIRE(after.requests == 20);
  CHECK(figure(after, "duplicates") == 5);
  CHECK(figure(after, "skipped") == 0);
  CHECK(figure(after, "consumed") == 20);
  const auto& before = row(r, "commit_before");
  CHECK(figure(before, "skipped") == 5);
  CHECK(figure(before, "duplicates") == 0);
  CHECK(figure(before, "consumed") == 15);
}

TEST_CASE(
    "a leader crash loses exactly the records acks=1 acknowledged in the last replication lag; "
    "acks=all loses none and fails them instead") {
  // One partition led by broker 0, a record every ms, 20 ms of replication lag. Broker 0 dies
  // at 1.0005 s: its followers have the records appended up to 0.9805 s. acks=1 acknowledged
  // the 20 records of 0.981 .. 1.000 s: lost when a follower takes over. acks=all had not
  // answered them: they fail. Nobody leads for the 2 s election delay: 2000 more errors.
  const char* const variants[] = {"acks_1", "partitioned_log"};
  const auto r = constant_run(
      1000, seconds(4), microseconds(100), {{"partitions", 1}}, variants, [](Experiment& e) {
        hldlab::testing::inject_everywhere(e, microseconds(1000500), "crash_broker",
                                           {{"broker", 0}, {"duration", "1h"}});
      });
  const auto& one = row(r, "acks_1");
  REQUIRE(one.requests == 4000);
  CHECK(figure(one, "acked_lost") == 20);
  CHECK(one.count(Outcome::error) == 2000);
  const auto& all = row(r, "partitioned_log");
  CHECK(figure(all, "acked_lost") == 0);
  CHECK(all.count(Outcome::error) == 2020);
  CHECK(figure(all, "consumed") == 4000 - 2020);
}

TEST_CASE(
    "unclean leader election: with the only in-sync replica dead, an out-of-sync one leads and "
    "every acknowledged record it lacks is lost; clean election stays offline instead") {
  // One partition led by broker 0. Broker 2 replicates 1000x slower from the start (20 s behind:
  // out of sync); broker 1 dies at 0.5005 s, so writes need min.insync = 2 and fail from then
  // on. acks=all acknowledged the records of 1 .. 480 ms (replicated to broker 1 by 0.5 s).
  // Broker 0 dies at 1.0005 s: unclean election makes broker 2 leader with nothing: 480 lost.
  const char* const variants[] = {"unclean_election", "partitioned_log"};
  const auto r = constant_run(
      1000, seconds(2), microseconds(100), {{"partitions", 1}}, variants,
      [](Experiment& e) {
        hldlab::testing::inject_everywhere(e, 0, "slow_broker",
                                           {{"broker", 2}, {"factor", 1000.0}, {"duration", "1h"}});
        hldlab::testing::inject_everywhere(e, microseconds(500500), "crash_broker",
                                           {{"broker", 1}, {"duration", "1h"}});
        hldlab::testing::inject_everywhere(e, microseconds(1000500), "crash_broker",
                                           {{"broker", 0}, {"duration", "1h"}});
      },
      seconds(5));
  const auto& unclean = row(r, "unclean_election");
  REQUIRE(unclean.requests == 2000);
  CHECK(unclean.count(Outcome::ok) == 480);
  CHECK(figure(unclean, "acked_lost") == 480);
  const auto& clean = row(r, "partitioned_log");
  CHECK(clean.count(Outcome::ok) == 480);
  CHECK(figure(clean, "acked_lost") == 0);
  // The other writes failed in both: 20 waiting for broker 1 when it died, 500 for want of a
  // second in-sync replica, then 1000 with no leader.
  CHECK(clean.count(Outcome::error) == 2000 - 480);
  CHECK(unclean.count(Outcome::error) == 2000 - 480);
}

TEST_CASE("a broker crash loses every message an in-memory queue held") {
  // The only consumer is down from the start; 50 messages queue; broker 0 dies at 0.6 s.
  const char* const variants[] = {"in_memory_queue"};
  const auto r = constant_run(
      100, milliseconds(500), milliseconds(1), {{"consumers", 1}}, variants, [](Experiment& e) {
        hldlab::testing::inject_everywhere(e, 0, "crash_consumer",
                                           {{"consumer", 0}, {"duration", "1s"}});
        hldlab::testing::inject_everywhere(e, milliseconds(600), "crash_broker",
                                           {{"broker", 0}, {"duration", "100ms"}});
      });
  CHECK(figure(r, "in_memory_queue", "acked_lost") == 50);
  CHECK(figure(r, "in_memory_queue", "consumed") == 0);
}

TEST_CASE("after a warm-up the figures count only what happened after it") {
  Workload w = hldlab::testing::constant_workload(0, milliseconds(1), 1000);
  w.arrivals.spikes.push_back({0, seconds(4), 10});
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"kafka_log", v, {}});
  const auto r = hldlab::testing::run_experiment(
      w, {.duration = seconds(4.05), .warmup = seconds(2)}, systems);
  for (const char* v : kVariants) {
    INFO(v);
    const auto& s = row(r, v);
    CHECK(figure(s, "produced") == s.requests);
    CHECK(figure(s, "consumed") == s.requests);
  }
}

TEST_CASE("the kafka_log script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("kafka_log.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 8);
  REQUIRE(r.exit_code() == 0);
}
