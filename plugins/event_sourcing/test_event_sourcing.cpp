#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"mutable_rows", "event_log", "read_your_writes", "snapshots"};
const char* const kLogs[] = {"event_log", "read_your_writes", "snapshots"};

std::vector<hldlab::testing::SystemSpec> every_variant(const Map& params) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"event_sourcing", v, params});
  return systems;
}

/// Only deposits, `rps` of them evenly spaced for `traffic`, all on account 0.
Workload deposits(double rps) {
  Workload w = hldlab::testing::constant_workload(rps, milliseconds(1), 1);
  w.write_share = 1;
  return w;
}

/// A workload whose only requests would come after `duration`: none at all.
Workload no_traffic(Time duration) {
  Workload w = hldlab::testing::constant_workload(0);
  w.arrivals.spikes.push_back({duration, seconds(1), 1});
  return w;
}

/// Every variant with `params`, no traffic but `requests` (arrival, op) on account 0, each
/// handed to every variant at its time (ids from 1e9 up), run for `duration`.
struct Crafted {
  std::unique_ptr<Experiment> experiment;
  ExperimentResult result;
};
Crafted run_crafted(Time duration, const Map& params,
                    const std::vector<std::pair<Time, Op>>& requests) {
  Crafted out{std::make_unique<Experiment>(ExperimentConfig{.duration = duration}), {}};
  Experiment& e = *out.experiment;
  e.set_workload(no_traffic(duration));
  for (const char* v : kVariants) e.add(registry(), "event_sourcing", v, params);
  for (const auto& s : e.systems())
    for (std::size_t i = 0; i < requests.size(); ++i) {
      SystemSlot* slot = s.get();
      Request r;
      r.id = 1000000000 + i;
      r.arrival = requests[i].first;
      r.op = requests[i].second;
      e.at(r.arrival, [slot, r] { slot->deliver(r); });
    }
  out.result = e.run();
  return out;
}

}  // namespace

TEST_CASE(
    "deposits that never overlap: nothing is lost, and a load replays exactly the events since "
    "the last snapshot") {
  // 99 deposits, 100 ms apart, on one account; a command takes 4 x 1 ms of network plus at
  // most 0.2 ms + 99 x 20 us of database: never two at once. Load i (i = 0 .. 98) replays i
  // events without snapshots, i mod 10 with a snapshot every 10.
  const auto r = run_experiment(deposits(10), seconds(10), every_variant({{"snapshot_every", 10}}));
  for (const char* v : kVariants) {
    INFO(v);
    REQUIRE(row(r, v).requests == 99);
    CHECK(row(r, v).count(Outcome::ok) == 99);
    CHECK(figure(r, v, "lost_updates") == 0);
    CHECK(figure(r, v, "conflicts") == 0);
  }
  for (const char* v : {"event_log", "read_your_writes"}) {
    INFO(v);
    CHECK(figure(r, v, "replayed_mean") == Approx(98.0 / 2));
    CHECK(figure(r, v, "replayed_max") == 98);
    CHECK(figure(r, v, "stream_max") == 99);
    CHECK(figure(r, v, "snapshots") == 0);
    CHECK(figure(r, v, "storage_bytes") == 99 * 64);
  }
  // 9 full cycles of 0 .. 9 and 0 .. 8: (9 x 45 + 36) / 99.
  CHECK(figure(r, "snapshots", "replayed_mean") == Approx((9 * 45 + 36) / 99.0));
  CHECK(figure(r, "snapshots", "replayed_max") == 9);
  CHECK(figure(r, "snapshots", "snapshots") == 9);
  CHECK(figure(r, "snapshots", "storage_bytes") == 99 * 64 + 9 * 48);
  CHECK(figure(r, "mutable_rows", "storage_bytes") == 1000 * 32);
}

TEST_CASE(
    "k deposits that read the same row: mutable rows lose k - 1 of them; the event log refuses "
    "k(k-1)/2 appends, retries them and keeps all k") {
  // Ten deposits 1 ms apart, the database 10 ms away: every SELECT (and every first load)
  // runs before the first UPDATE (append) lands.
  Workload w = deposits(1000);
  const Map params{{"db_delay", "10ms"}};
  const auto r = run_experiment(w, milliseconds(11), every_variant(params));  // 1 .. 10 ms
  const auto& rows = row(r, "mutable_rows");
  REQUIRE(rows.requests == 10);
  CHECK(rows.count(Outcome::ok) == 10);
  CHECK(figure(rows, "lost_updates") == 9);
  for (const char* v : kLogs) {
    INFO(v);
    CHECK(row(r, v).count(Outcome::ok) == 10);
    CHECK(figure(r, v, "lost_updates") == 0);
    // Each round every remaining command has loaded the same version: one wins.
    CHECK(figure(r, v, "conflicts") == 9 + 8 + 7 + 6 + 5 + 4 + 3 + 2 + 1);
    CHECK(figure(r, v, "stream_max") == 10);
  }
}

TEST_CASE(
    "the balance as of a past time: mutable rows answer today's, the event log replays the "
    "events committed by then") {
  const auto run =
      run_crafted(seconds(5), {{"snapshot_every", 2}},
                  {{seconds(1), Op::write}, {seconds(2), Op::write}, {seconds(3), Op::write}});
  for (const auto& s : run.experiment->systems()) {
    INFO(s->variant());
    const Value now = s->call("account", {{"account", 0}});
    const Value early = s->call("as_of", {{"account", 0}, {"time", 1.5}});
    const Value late = s->call("as_of", {{"account", 0}, {"time", 4.0}});
    CHECK(late["true_balance"] == now["true_balance"]);
    CHECK(early["true_balance"].as_int() < now["true_balance"].as_int());
    if (s->variant() == "mutable_rows") {
      CHECK(early["balance"] == now["true_balance"]);  // wrong: it only has today's value
    } else {
      CHECK(early["balance"] == early["true_balance"]);
      CHECK(late["balance"] == late["true_balance"]);
      // One event committed by 1.5 s; at 4 s the snapshot at version 2 and one event after.
      CHECK(early["replayed"].as_int() == 1);
      CHECK(late["replayed"].as_int() == (s->variant() == "snapshots" ? 1 : 3));
    }
  }
}

TEST_CASE(
    "right after a deposit the read model lags until the projector's next poll: the event log "
    "reads stale, read-your-writes waits") {
  // A deposit at 1 s is acknowledged at 1.0044 s (two round trips of 2.2 ms); the projector
  // polls every 100 ms and applies it at 1.1001 s. Reads of the account every 10 ms from
  // 1.01 s run on the read model 1.2 ms after they arrive: those from 1.01 to 1.09 s read it
  // before the event (stale); the one at 1.10 s after it.
  std::vector<std::pair<Time, Op>> requests = {{seconds(1), Op::write}};
  for (int i = 1; i <= 20; ++i) requests.push_back({seconds(1) + milliseconds(10) * i, Op::read});
  const auto run = run_crafted(seconds(2), {{"audit_share", 0.0}}, requests);
  const auto& r = run.result;
  CHECK(figure(r, "mutable_rows", "stale_reads") == 0);
  CHECK(figure(r, "event_log", "stale_reads") == 9);
  CHECK(figure(r, "event_log", "read_waits") == 0);
  for (const char* v : {"read_your_writes", "snapshots"}) {
    INFO(v);
    CHECK(figure(r, v, "stale_reads") == 0);
    // The read at 1.10 s arrives as the poll starts, before the event is applied: it waits too.
    CHECK(figure(r, v, "read_waits") == 10);
    // The longest wait: from 1.01 s to 1.1001 s.
    CHECK(figure(r, v, "read_wait_p99") == Approx(0.0901).epsilon(0.01));
    CHECK(figure(r, v, "projection_lag_p99") == Approx(1.1001 - 1.0034).epsilon(0.01));
  }
  for (const char* v : kVariants) CHECK(row(r, v).completed == 21);
}

TEST_CASE(
    "rebuilding a stream costs statement_time + rows x event_read_time: rows = events without "
    "snapshots, events mod K + 1 with a snapshot every K") {
  // 10 deposits/s that never overlap (a load of 509 events takes 51 ms < 100 ms); the
  // account is rebuilt every 10 s. After 10 k seconds, 100 k - 1 events.
  const Map params{{"event_read_time", "100us"}, {"snapshot_every", 10}};
  Experiment e({.duration = seconds(51)});
  e.set_workload(deposits(10));
  std::map<std::string, std::vector<Value>> curve;
  for (const char* v : {"event_log", "snapshots"}) {
    SystemSlot& slot = e.add(registry(), "event_sourcing", v, params);
    for (int k = 1; k <= 5; ++k)
      e.at(seconds(10 * k), [&slot, &curve] {
        curve[slot.variant()].push_back(slot.call("rebuild", {{"account", 0}}));
      });
  }
  const auto r = e.run();
  const double statement = 200e-6, per_row = 100e-6;
  for (int k = 1; k <= 5; ++k) {
    const std::int64_t n = 100 * k - 1;
    INFO("after " << 10 * k << " s: " << n << " events");
    const Value& log = curve["event_log"][static_cast<std::size_t>(k - 1)];
    const Value& snap = curve["snapshots"][static_cast<std::size_t>(k - 1)];
    CHECK(log["events"].as_int() == n);
    CHECK(log["replayed"].as_int() == n);
    CHECK(log["rows"].as_int() == n);
    CHECK(log["cost"].as_double() == Approx(statement + n * per_row));
    CHECK(snap["events"].as_int() == n);
    CHECK(snap["replayed"].as_int() == n % 10);
    CHECK(snap["rows"].as_int() == n % 10 + 1);
    CHECK(snap["cost"].as_double() == Approx(statement + (n % 10 + 1) * per_row));
    CHECK(snap["balance"] == log["balance"]);
  }
  // The slowest deposit (the last, at 50.9 s) loaded 508 events: 4 x 1 ms + (0.2 + 50.8) ms
  // + 0.2 ms.
  CHECK(row(r, "event_log").max == Approx(0.0042 + 0.0002 + 508 * 100e-6).epsilon(0.01));
  // With snapshots it loads at most 10 rows and sometimes writes the snapshot: 5.6 ms.
  CHECK(row(r, "snapshots").max == Approx(0.0042 + 0.0002 + 10 * 100e-6 + 0.0002).epsilon(0.01));
  CHECK(figure(r, "event_log", "replayed_mean") == Approx(508.0 / 2));
}

TEST_CASE(
    "on random traffic with hot accounts rows lose updates and answer audits wrong; the event "
    "logs lose nothing and answer every audit right") {
  Workload w = hldlab::testing::poisson_workload(400, milliseconds(1), 1000);
  w.keys = KeyDistribution::zipf(1000, 1.1);
  w.write_share = 0.3;
  for (std::uint64_t seed : {1, 2}) {
    const auto r = run_experiment(w, seconds(20), every_variant({}), seed);
    INFO("seed " << seed);
    CHECK(figure(r, "mutable_rows", "lost_updates") > 0);
    CHECK(figure(r, "mutable_rows", "audit_wrong") > 0);
    for (const char* v : kLogs) {
      INFO(v);
      CHECK(figure(r, v, "lost_updates") == 0);
      CHECK(figure(r, v, "audit_wrong") == 0);
      CHECK(figure(r, v, "audits") == figure(r, "mutable_rows", "audits"));
      CHECK(row(r, v).count(Outcome::error) == 0);
    }
    CHECK(figure(r, "event_log", "conflicts") > 0);
    CHECK(figure(r, "event_log", "stale_reads") > 0);
    CHECK(figure(r, "read_your_writes", "stale_reads") == 0);
    CHECK(figure(r, "snapshots", "stale_reads") == 0);
    // A snapshot every 100 events: at most 99 replayed, about half of that on hot streams.
    CHECK(figure(r, "snapshots", "replayed_max") <= 99);
    CHECK(figure(r, "snapshots", "replayed_mean") < figure(r, "event_log", "replayed_mean") / 2);
  }
}

TEST_CASE("a stalled projector makes stale reads pile up; read-your-writes waits them out") {
  Workload w = hldlab::testing::poisson_workload(400, milliseconds(1), 100);
  w.write_share = 0.3;
  const auto calm = run_experiment(w, seconds(20), every_variant({}), 3);
  const auto stalled = run_experiment(w, seconds(20), every_variant({}), 3, [](Experiment& e) {
    hldlab::testing::inject_everywhere(e, seconds(10), "stall_projection", {{"duration", "5s"}});
  });
  CHECK(figure(stalled, "event_log", "stale_reads") > 2 * figure(calm, "event_log", "stale_reads"));
  CHECK(figure(stalled, "event_log", "projection_lag_p99") > 1);
  CHECK(figure(stalled, "read_your_writes", "stale_reads") == 0);
  CHECK(figure(stalled, "read_your_writes", "read_wait_p99") > 1);
  // Rows have no read model: the stall changes nothing for them.
  CHECK(figure(stalled, "mutable_rows", "stale_reads") == 0);
}

TEST_CASE("after a warm-up the figures count the commands that arrived after it") {
  const auto r = run_experiment(deposits(10), {.duration = seconds(10), .warmup = seconds(5)},
                                every_variant({{"snapshot_every", 10}}));
  for (const char* v : kVariants) {
    INFO(v);
    CHECK(row(r, v).requests == 50);  // 5.0, 5.1, ..., 9.9 s
    CHECK(figure(r, v, "lost_updates") == 0);
  }
  // Loads after the warm-up replay 49 .. 98 events.
  CHECK(figure(r, "event_log", "replayed_mean") == Approx((49 + 98) / 2.0));
  CHECK(figure(r, "event_log", "stream_max") == 99);  // state is kept
}

TEST_CASE("the event_sourcing script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("event_sourcing.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}
