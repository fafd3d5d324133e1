// Each isolation level against the anomalies it allows, counted by the runtime's checker from
// the recorded history and by the lesson itself; hand-made schedules for exact counts.
#include <catch2/catch.hpp>

#include "hldlab/runtime/checkers.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kLevels[] = {"read_uncommitted", "read_committed", "snapshot_isolation",
                               "serializable"};

struct Checked {
  SystemResult row;
  TransactionsResult check;
};

/// Every level on the same traffic (`rps` transactions a second for 5 s), histories checked.
std::vector<Checked> run(const std::string& workload, std::uint64_t seed, double rps = 400,
                         Map params = {}) {
  Experiment e({.seed = seed, .duration = seconds(5)});
  e.set_workload(hldlab::testing::poisson_workload(rps, milliseconds(1), 1));
  params["workload"] = workload;
  std::vector<SystemSlot*> slots;
  for (const char* level : kLevels)
    slots.push_back(&e.add(registry(), "acid_transactions", level, params, "", 100000));
  const ExperimentResult r = e.run();
  std::vector<Checked> out;
  for (std::size_t i = 0; i < slots.size(); ++i)
    out.push_back({r.systems[i], check_transactions(*slots[i]->history())});
  return out;
}

std::size_t count(const TransactionsResult& r, const std::string& type) {
  return r.counts.at(type);
}

}  // namespace

TEST_CASE(
    "counters: read committed loses updates, exactly as many as the checker's G-single "
    "cycles; snapshot isolation and serializable lose none") {
  for (std::uint64_t seed : {1, 2, 3}) {
    INFO("seed " << seed);
    const auto r = run("counters", seed);
    const auto& rc = r[1];
    CHECK(figure(rc.row, "lost_updates") > 0);
    CHECK(count(rc.check, "G-single") == static_cast<std::size_t>(figure(rc.row, "lost_updates")));
    for (const char* g1 : {"G0", "G1a", "G1b", "G1c"}) CHECK(count(rc.check, g1) == 0);
    for (std::size_t level : {2u, 3u}) {
      CHECK(figure(r[level].row, "lost_updates") == 0);
      CHECK(r[level].check.verdict == Verdict::valid);
    }
  }
}

TEST_CASE(
    "bank: read uncommitted reads rolled-back transfers (G1a) and audits see wrong totals; "
    "snapshot isolation and serializable keep every audit right and the checker silent") {
  for (std::uint64_t seed : {1, 2}) {
    INFO("seed " << seed);
    const auto r = run("bank", seed);
    CHECK(count(r[0].check, "G1a") > 0);
    CHECK(figure(r[0].row, "audit_mismatches") > 0);
    CHECK(count(r[0].check, "G0") == 0);  // writes lock their key even at read uncommitted
    CHECK(figure(r[1].row, "audit_mismatches") > 0);  // read skew
    CHECK(count(r[1].check, "G-single") > 0);
    CHECK(count(r[1].check, "G1a") + count(r[1].check, "G1b") + count(r[1].check, "G1c") == 0);
    for (std::size_t level : {2u, 3u}) {
      CHECK(figure(r[level].row, "audit_mismatches") == 0);
      CHECK(count(r[level].check, "G0") + count(r[level].check, "G1a") +
                count(r[level].check, "G1c") + count(r[level].check, "G-single") ==
            0);
    }
    CHECK(r[3].check.verdict == Verdict::valid);
    CHECK(figure(r[2].row, "total_drift") == 0);  // no lost update: the money adds up
    CHECK(figure(r[3].row, "total_drift") == 0);
  }
}

TEST_CASE(
    "doctors: snapshot isolation allows write skew (G2, shifts left with nobody on call); "
    "serializable does not") {
  for (std::uint64_t seed : {1, 2}) {
    INFO("seed " << seed);
    const auto r = run("doctors", seed, 400, Map{{"shifts", 5}});
    const auto& si = r[2];
    CHECK(figure(si.row, "nobody_on_call") > 0);
    CHECK(count(si.check, "G2") > 0);
    CHECK(count(si.check, "G-single") == 0);
    CHECK(count(si.check, "G0") + count(si.check, "G1a") + count(si.check, "G1c") == 0);
    CHECK(figure(r[3].row, "nobody_on_call") == 0);
    CHECK(r[3].check.verdict == Verdict::valid);
  }
}

TEST_CASE(
    "stronger isolation costs aborts: snapshot isolation aborts concurrent writers, "
    "serializable also waits for locks") {
  const auto r = run("counters", 1);
  // Client rollbacks are the same 5% everywhere (common random numbers); conflicts add to them.
  CHECK(figure(r[2].row, "aborted") > figure(r[1].row, "aborted"));
  CHECK(figure(r[3].row, "aborted") > figure(r[1].row, "aborted"));
  CHECK(r[3].row.figures.at("blocked_ms").as_double() > 0);
  CHECK(r[2].row.figures.at("blocked_ms").as_double() == 0);
}
