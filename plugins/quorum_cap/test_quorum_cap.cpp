#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <string>

#include "hldlab/runtime/checkers.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// "r2w3": the label of the system with read quorum r and write quorum w.
std::string label(int r, int w) {
  std::string out = "r";
  out += std::to_string(r);
  out += 'w';
  out += std::to_string(w);
  return out;
}

Workload traffic(std::uint32_t clients, std::uint64_t keys = 100) {
  Workload w;
  w.arrivals.rps = 1000;
  w.keys = KeyDistribution::uniform(keys);
  w.clients = clients;
  w.write_share = 0.3;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  return w;
}

/// Replica `node` cut off from the others during [from, from + 10 s).
void partition_window(Experiment& e, SystemSlot& s, Time from = seconds(10),
                      std::int64_t node = 0) {
  e.at(from, [&s, node] { s.inject("partition", {{"nodes", List{node}}}); });
  e.at(from + seconds(10), [&s] { s.inject("heal", {}); });
}

/// ap, hinted_handoff and cp on the partition traffic of the script (1000 keys), with
/// anti-entropy 60 s after the heal: after the end of the run.
ExperimentResult heal_run(std::uint64_t seed) {
  Experiment e({.seed = seed, .duration = seconds(30)});
  e.set_workload(traffic(300, 1000));
  for (const char* v : {"ap", "hinted_handoff", "cp"})
    partition_window(e, e.add(registry(), "quorum_cap", v, {{"anti_entropy_delay", "60s"}}));
  return e.run();
}

/// The rows of ap, hinted_handoff and cp in heal_run(seed), run once per seed for every test.
struct HealRows {
  const SystemResult &ap, &hh, &cp;
};
HealRows heal_rows(std::uint64_t seed) {
  static std::map<std::uint64_t, ExperimentResult> runs;
  const auto [run, added] = runs.try_emplace(seed);
  if (added) run->second = heal_run(seed);
  const ExperimentResult& r = run->second;
  return {row(r, "ap"), row(r, "hinted_handoff"), row(r, "cp")};
}

/// One client (coordinated by replica 0) writing one of 100000 keys every millisecond.
Workload one_writer_per_ms() {
  Workload w = traffic(1, 100000);
  w.arrivals.kind = Arrivals::Kind::constant;
  w.write_share = 1;
  return w;
}

/// Fixed 0.25 ms delays (so what is in flight when is known) and anti-entropy after the run.
const Map kClockwork{
    {"delay_min", "0.25ms"}, {"delay_max", "0.25ms"}, {"anti_entropy_delay", "60s"}};

}  // namespace

TEST_CASE("quorums with R + W > N never return a stale read, R + W <= N do") {
  for (std::uint64_t seed : {1, 2}) {
    Experiment e({.seed = seed, .duration = seconds(30)});
    e.set_workload(traffic(300));
    for (int r = 1; r <= 3; ++r)
      for (int w = 1; w <= 3; ++w)
        e.add(registry(), "quorum_cap", "cp", {{"read_quorum", r}, {"write_quorum", w}},
              label(r, w));
    const auto result = e.run();
    for (int r = 1; r <= 3; ++r)
      for (int w = 1; w <= 3; ++w) {
        const auto& s = row(result, label(r, w));
        INFO("seed " << seed << " R=" << r << " W=" << w);
        if (r + w > 3)
          CHECK(figure(s, "stale_reads") == 0);
        else
          CHECK(figure(s, "stale_reads") > 0);
        CHECK(s.count(Outcome::ok) == s.requests);  // no fault: everything answered
      }
    // The weakest quorums are the stalest.
    CHECK(figure(row(result, "r1w1"), "stale_reads") > figure(row(result, "r1w2"), "stale_reads"));
  }
}

TEST_CASE("CP rejects exactly the operations the isolated replica gets during the partition") {
  Experiment e({.duration = seconds(30)});
  Workload w = traffic(1);  // one client: every operation is coordinated by replica 0
  w.arrivals.kind = Arrivals::Kind::constant;
  e.set_workload(w);
  for (const char* v : {"ap", "cp"}) partition_window(e, e.add(registry(), "quorum_cap", v));
  const auto r = e.run();
  // One operation per ms; those arriving in [10 s, 20 s) find no quorum (1 of 3 replicas).
  CHECK(row(r, "cp").count(Outcome::rejected) == 10000);
  CHECK(row(r, "cp").metrics.at("rejected_no_quorum").as_double() == 10000);
  CHECK(row(r, "ap").count(Outcome::rejected) == 0);
  // One side only takes writes: AP diverges from the cut-off replicas but has no conflict.
  CHECK(figure(row(r, "ap"), "conflict_keys") == 0);
  CHECK(figure(row(r, "ap"), "divergent_at_heal") > 0);
  CHECK(figure(row(r, "ap"), "divergent_1s_after_heal") == 0);
}

TEST_CASE("under a partition AP serves stale reads and loses writes at heal, CP stays consistent") {
  for (std::uint64_t seed : {1, 2}) {
    Experiment e({.seed = seed, .duration = seconds(30)});
    e.set_workload(traffic(300, 1000));
    for (const char* v : {"ap", "cp"}) partition_window(e, e.add(registry(), "quorum_cap", v));
    const auto r = e.run();
    const auto& ap = row(r, "ap");
    const auto& cp = row(r, "cp");
    INFO("seed " << seed);
    CHECK(figure(ap, "stale_reads") > 100);
    // Theory: 3000 writes in the 10 s window over 1000 uniform keys, a third of them on the
    // isolated side. A key is written there with probability 1 - e^-1, on the majority side
    // with 1 - e^-2: both (a conflict) 0.547, either (divergent at heal) 1 - e^-3 = 0.950.
    // Bounds: about 5 binomial standard deviations over the 1000 keys.
    CHECK(std::abs(figure(ap, "conflict_keys") - 547) < 80);
    CHECK(std::abs(figure(ap, "divergent_at_heal") - 950) < 35);
    // CP: only the majority writes; the isolated replica misses them (1 - e^-2 = 0.865).
    CHECK(std::abs(figure(cp, "divergent_at_heal") - 865) < 55);
    CHECK(figure(ap, "lww_dropped") > figure(ap, "conflict_keys"));
    CHECK(figure(ap, "divergent_1s_after_heal") == 0);  // reconciled at heal
    CHECK(figure(ap, "stale_after_heal") == 0);
    CHECK(ap.count(Outcome::rejected) == 0);
    CHECK(figure(cp, "stale_reads") == 0);
    CHECK(figure(cp, "conflict_keys") == 0);
    CHECK(figure(cp, "lww_dropped") == 0);
    CHECK(figure(cp, "divergent_1s_after_heal") == 0);
    // Clients 0, 3, 6, ...: a third of the ~10000 operations in the window, within 5 sigma.
    CHECK(cp.count(Outcome::rejected) > 3333 - 5 * 58);
    CHECK(cp.count(Outcome::rejected) < 3333 + 5 * 58);
  }
}

TEST_CASE("hinted handoff keeps one hint per acked write and unreachable replica, replays them") {
  // One client (coordinated by replica 0), one write per ms, fixed 0.25 ms delays: nothing is
  // in flight when the partition starts at 10.0006 s or heals at 20.0006 s, and the writes of
  // 10.001 s .. 20.000 s (10000) are all acked on their side. Anti-entropy is after the run.
  Experiment e({.duration = seconds(30)});
  e.set_workload(one_writer_per_ms());
  auto add = [&](const char* variant, const char* label, std::int64_t node, Map params) {
    params.insert(kClockwork.begin(), kClockwork.end());
    partition_window(e, e.add(registry(), "quorum_cap", variant, params, label), seconds(10.0006),
                     node);
  };
  add("ap", "ap", 0, {});
  add("hinted_handoff", "isolated", 0, {});  // replicas 1 and 2 unreachable: 2 hints a write
  add("hinted_handoff", "majority", 1, {});  // only replica 1 unreachable: 1 hint a write
  add("hinted_handoff", "capped", 0, {{"max_hints", 5000}});
  add("hinted_handoff", "no_hints", 0, {{"max_hints", 0}});
  const auto r = e.run();
  for (const char* label : {"ap", "isolated", "majority", "capped", "no_hints"})
    CHECK(row(r, label).count(Outcome::ok) == row(r, label).requests);
  CHECK(figure(row(r, "ap"), "hints_replayed") == 0);
  CHECK(figure(row(r, "isolated"), "hints_replayed") == 20000);
  CHECK(figure(row(r, "majority"), "hints_replayed") == 10000);
  CHECK(row(r, "isolated").metrics.at("hints_dropped").as_double() == 0);
  // A coordinator keeps at most max_hints: the rest are dropped and counted.
  CHECK(figure(row(r, "capped"), "hints_replayed") == 5000);
  CHECK(row(r, "capped").metrics.at("hints_dropped").as_double() == 15000);
  CHECK(figure(row(r, "no_hints"), "hints_replayed") == 0);
  CHECK(row(r, "no_hints").metrics.at("hints_dropped").as_double() == 20000);

  // The isolated replica holds every key written during the partition, the others none: ap and
  // hinted handoff diverge alike. Theory: 10000 writes over 100000 keys touch
  // 100000 (1 - e^-0.1) = 9516 keys; 1000 writes in the second after the heal rewrite (and so
  // reunite) a fraction 1 - e^-0.01 of them: 9421 left apart for ap.
  const std::int64_t at_heal = figure(row(r, "ap"), "divergent_at_heal");
  CHECK(std::abs(at_heal - 9516) < 150);
  CHECK(figure(row(r, "isolated"), "divergent_at_heal") == at_heal);
  CHECK(std::abs(figure(row(r, "ap"), "divergent_1s_after_heal") - 9421) < 150);
  // Hints bring every replica up to date long before anti-entropy; dropped hints do not.
  CHECK(figure(row(r, "isolated"), "divergent_1s_after_heal") == 0);
  CHECK(figure(row(r, "majority"), "divergent_1s_after_heal") == 0);
  CHECK(figure(row(r, "capped"), "divergent_1s_after_heal") > 0);
  CHECK(figure(row(r, "capped"), "divergent_1s_after_heal") <
        figure(row(r, "ap"), "divergent_1s_after_heal"));
  CHECK(figure(row(r, "no_hints"), "divergent_1s_after_heal") ==
        figure(row(r, "ap"), "divergent_1s_after_heal"));
}

TEST_CASE("a write the partition cuts off in flight is hinted too, so no replica stays behind") {
  // As above, but the partition starts at 10.0001 s: the write of 10.000 s is on its way to
  // replicas 1 and 2 (it lands at 10.00025 s). Both messages are lost; the write times out
  // (W = 2, only replica 0 applied it), and its coordinator keeps a hint for each.
  Experiment e({.duration = seconds(30)});
  e.set_workload(one_writer_per_ms());
  for (const char* v : {"ap", "hinted_handoff"})
    partition_window(e, e.add(registry(), "quorum_cap", v, kClockwork), seconds(10.0001));
  const auto r = e.run();
  const auto& ap = row(r, "ap");
  const auto& hh = row(r, "hinted_handoff");
  CHECK(hh.count(Outcome::timeout) == 1);
  CHECK(ap.count(Outcome::timeout) == 1);
  CHECK(figure(hh, "hints_replayed") == 2 + 20000);  // the cut write + 10000 in the window
  CHECK(figure(hh, "divergent_1s_after_heal") == 0);
  CHECK(figure(ap, "divergent_1s_after_heal") > 9000);
}

TEST_CASE("after a heal hinted handoff reunites the replicas before anti-entropy, ap does not") {
  for (std::uint64_t seed : {1, 2}) {
    const auto [ap, hh, cp] = heal_rows(seed);
    INFO("seed " << seed);
    // Theory: 3000 writes in the window, a third coordinated by the isolated replica (2 hints
    // each), two thirds by the majority (1 hint each): 4000 hints, sd ~ sqrt(3000 * 2) = 77.
    CHECK(std::abs(figure(hh, "hints_replayed") - 4000) < 5 * 77);
    CHECK(hh.metrics.at("hints_dropped").as_double() == 0);
    CHECK(figure(hh, "divergent_1s_after_heal") == 0);
    // Without hints a key divergent at heal (1 - e^-3 of them) stays so until a write after
    // the heal reaches all its replicas: 300 writes in that second, e^-0.3 of keys untouched:
    // 1000 * 0.950 * 0.741 = 704 keys (cp: 1000 * 0.865 * 0.741 = 641), within ~5 sd.
    CHECK(std::abs(figure(ap, "divergent_1s_after_heal") - 704) < 75);
    CHECK(std::abs(figure(cp, "divergent_1s_after_heal") - 641) < 80);
  }
}

TEST_CASE("with delayed anti-entropy ap reads stale after the heal, hinted handoff and cp do not") {
  for (std::uint64_t seed : {1, 2}) {
    const auto [ap, hh, cp] = heal_rows(seed);
    INFO("seed " << seed);
    CHECK(figure(ap, "stale_after_heal") > 100);
    // Only reads in the few ms before the hints land can miss them.
    CHECK(figure(hh, "stale_after_heal") * 50 < figure(ap, "stale_after_heal"));
    // CP's isolated replica is behind too, but every read quorum meets a majority replica.
    CHECK(figure(cp, "stale_after_heal") == 0);
    CHECK(figure(cp, "stale_reads") == 0);
    // Hinted handoff does not help during the partition: a sloppy quorum is still stale.
    CHECK(figure(hh, "stale_reads") - figure(hh, "stale_after_heal") > 1000);
  }
}

TEST_CASE(
    "during the partition hinted handoff is ap: same stale reads and last-write-wins losses") {
  // Fixed delays: no randomness in the network, so both systems see the very same events until
  // the heal, with anti-entropy at the heal (the default) or 60 s later.
  for (const char* anti_entropy : {"0s", "60s"}) {
    Experiment e({.duration = seconds(30)});
    e.set_workload(traffic(300, 1000));
    const Map params{
        {"delay_min", "5ms"}, {"delay_max", "5ms"}, {"anti_entropy_delay", anti_entropy}};
    // Replica 2 cut off: with equal delays replies come back in the order they were asked
    // (replica 0 first), so after the heal ap's reads of keys written only by replica 2 meet
    // two replicas that missed them.
    for (const char* v : {"ap", "hinted_handoff"})
      partition_window(e, e.add(registry(), "quorum_cap", v, params), seconds(10), 2);
    const auto r = e.run();
    const auto& ap = row(r, "ap");
    const auto& hh = row(r, "hinted_handoff");
    INFO("anti-entropy after " << anti_entropy);
    CHECK(figure(hh, "hints_replayed") > 3000);
    CHECK(figure(ap, "stale_reads") - figure(ap, "stale_after_heal") > 1000);
    CHECK(figure(hh, "stale_reads") - figure(hh, "stale_after_heal") ==
          figure(ap, "stale_reads") - figure(ap, "stale_after_heal"));
    CHECK(figure(ap, "conflict_keys") > 400);
    CHECK(figure(hh, "conflict_keys") == figure(ap, "conflict_keys"));
    CHECK(figure(hh, "lww_dropped") == figure(ap, "lww_dropped"));
    CHECK(figure(hh, "divergent_at_heal") == figure(ap, "divergent_at_heal"));
    if (std::string(anti_entropy) == "0s") {  // anti-entropy at heal: nothing left for hints
      CHECK(figure(ap, "stale_after_heal") == 0);
      CHECK(figure(hh, "stale_after_heal") == 0);
      CHECK(figure(ap, "stale_reads") == figure(hh, "stale_reads"));
    } else {
      CHECK(figure(hh, "stale_after_heal") < figure(ap, "stale_after_heal"));
    }
  }
}

TEST_CASE("the quorum_cap script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("quorum_cap.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 13);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("quorums larger than the replica set and unknown replicas are refused") {
  Experiment e;
  REQUIRE_THROWS_WITH(e.add(registry(), "quorum_cap", "cp", {{"write_quorum", 4}}),
                      Catch::Contains("must be at most replicas"));
  SystemSlot& s = e.add(registry(), "quorum_cap", "ap");
  REQUIRE_THROWS_WITH(s.inject("partition", {{"nodes", List{5}}}),
                      Catch::Contains("node 5 does not exist"));
}

// ---- linearizability, through the runtime's checker on recorded histories ----------------------

namespace {

/// `variant` recording its history under a partition of replica 0 from 1 s: client 0
/// (coordinated by the isolated replica 0) writes key 7 at 1.1 s and client 1 (replica 1,
/// majority side) reads it at 1.2 s. (The workload's first request would come at 5 s.)
LinearizabilityResult split_write_then_read(const std::string& variant) {
  Experiment e({.duration = seconds(3)});
  e.set_workload(hldlab::testing::constant_workload(0.2, milliseconds(1), 1));
  SystemSlot& slot = e.add(registry(), "quorum_cap", variant, {}, "", 1000);
  e.at(seconds(1), [&slot] { slot.inject("partition", Map{{"nodes", List{0}}}); });
  for (const auto& [at, op, client] :
       {std::tuple{seconds(1.1), Op::write, 0u}, std::tuple{seconds(1.2), Op::read, 1u}})
    e.at(at, [&slot, at = at, op = op, client = client] {
      Request r;
      r.id = 1'000'000 + client;
      r.key = 7;
      r.arrival = at;
      r.client = client;
      r.op = op;
      slot.deliver(r);
    });
  e.run();
  return check_linearizable(*slot.history());
}

/// The script's Part 4: 500 rps, 20 keys, 30% writes, replica 0 cut off from 2 s to 4 s.
std::vector<LinearizabilityResult> partition_run(
    std::uint64_t seed, const std::vector<std::pair<std::string, Map>>& systems,
    std::size_t history_limit, ExperimentResult* results = nullptr) {
  Experiment e({.seed = seed, .duration = seconds(6)});
  Workload w = hldlab::testing::poisson_workload(500, milliseconds(1), 20);
  w.clients = 300;
  w.write_share = 0.3;
  e.set_workload(w);
  std::vector<SystemSlot*> slots;
  int n = 0;
  for (const auto& [variant, params] : systems)
    slots.push_back(&e.add(registry(), "quorum_cap", variant, params, "s" + std::to_string(n++),
                           history_limit));
  hldlab::testing::inject_everywhere(e, seconds(2), "partition", Map{{"nodes", List{0}}});
  hldlab::testing::inject_everywhere(e, seconds(4), "heal");
  ExperimentResult r = e.run();
  if (results) *results = r;
  std::vector<LinearizabilityResult> out;
  for (SystemSlot* s : slots)
    if (s->history()) out.push_back(check_linearizable(*s->history()));
  return out;
}

}  // namespace

TEST_CASE(
    "a write acknowledged by the isolated replica alone, then a read on the majority side "
    "that misses it: AP is not linearizable, with exactly that write and read as witness; "
    "CP rejected the write") {
  for (const char* sloppy : {"ap", "hinted_handoff"}) {
    INFO(sloppy);
    const auto r = split_write_then_read(sloppy);
    REQUIRE(r.verdict == Verdict::invalid);
    CHECK(r.key == 7);
    REQUIRE(r.witness.size() == 2);
    CHECK(r.witness[0].kind == HistoryKind::write);
    CHECK(r.witness[0].completed == seconds(1.1));  // its own replica, no network delay
    CHECK(r.witness[1].kind == HistoryKind::read);
    CHECK(r.witness[1].value == History::kNoValue);
  }
  const auto cp = split_write_then_read("cp");
  CHECK(cp.verdict == Verdict::valid);
  CHECK(cp.operations == 1);  // the read: a rejected write failed, it is not an operation
}

TEST_CASE(
    "the checker finds AP and hinted handoff not linearizable during a partition, and CP "
    "quorums with read repair linearizable") {
  for (std::uint64_t seed : {1, 2, 3}) {
    INFO("seed " << seed);
    const auto r = partition_run(
        seed, {{"ap", {}}, {"hinted_handoff", {}}, {"cp", Map{{"read_repair", true}}}}, 100000);
    CHECK(r[0].verdict == Verdict::invalid);
    CHECK(r[1].verdict == Verdict::invalid);
    CHECK(r[2].verdict == Verdict::valid);
  }
}

TEST_CASE("recording a history changes nothing the lesson measures") {
  const std::vector<std::pair<std::string, Map>> systems = {
      {"ap", {}}, {"cp", {}}, {"hinted_handoff", {}}, {"cp", Map{{"read_repair", true}}}};
  ExperimentResult off, on;
  partition_run(1, systems, 0, &off);
  partition_run(1, systems, 100000, &on);
  for (std::size_t i = 0; i < systems.size(); ++i) {
    INFO(off.systems[i].label);
    CHECK(off.systems[i].figures == on.systems[i].figures);
    CHECK(off.systems[i].completed == on.systems[i].completed);
    CHECK(off.systems[i].p99 == on.systems[i].p99);
    CHECK(off.systems[i].count(Outcome::rejected) == on.systems[i].count(Outcome::rejected));
  }
}
