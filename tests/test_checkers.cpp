// The history checkers on hand-made histories, each written from the definition it tests
// (Herlihy & Wing's linearizability; Adya's G0, G1a, G1b, G1c, G-single, G2), not from the
// checkers' output.
#include <catch2/catch.hpp>
#include <string>

#include "hldlab/runtime/checkers.hpp"

using namespace hldlab;

namespace {
constexpr std::int64_t nil = History::kNoValue;

/// A register history written as a list of operations with their interval.
struct Registers {
  History h{1000};
  void write(std::uint64_t key, std::int64_t v, Time from, Time to,
             HistoryOutcome outcome = HistoryOutcome::ok) {
    const auto op = h.invoke(0, HistoryKind::write, key, v, from);
    if (outcome != HistoryOutcome::pending) h.complete(op, outcome, to);
  }
  void read(std::uint64_t key, std::int64_t v, Time from, Time to) {
    h.complete(h.invoke(1, HistoryKind::read, key, 0, from), HistoryOutcome::ok, to, v);
  }
  Verdict verdict() const { return check_linearizable(h).verdict; }
};

/// A transaction: reads (key, version) and writes (key, version, overwritten version).
struct Txn {
  std::vector<MicroOp> ops;
  Txn& r(std::uint64_t key, std::int64_t v) {
    ops.push_back({key, v, 0, false});
    return *this;
  }
  Txn& w(std::uint64_t key, std::int64_t v, std::int64_t prev) {
    ops.push_back({key, v, prev, true});
    return *this;
  }
};

TransactionsResult check(const std::vector<std::pair<Txn, HistoryOutcome>>& txns) {
  History h(1000);
  Time t = 0;
  for (const auto& [txn, outcome] : txns) {
    const auto id = h.begin(0, t++);
    for (const MicroOp& m : txn.ops)
      if (m.write)
        h.write(id, m.key, m.value, m.prev);
      else
        h.read(id, m.key, m.value);
    h.complete(id, outcome, t++);
  }
  return check_transactions(h);
}

constexpr auto ok = HistoryOutcome::ok;
constexpr auto aborted = HistoryOutcome::fail;

std::size_t total(const TransactionsResult& r) {
  std::size_t n = 0;
  for (const auto& [type, count] : r.counts) n += count;
  return n;
}
}  // namespace

// ---- linearizability ---------------------------------------------------------------------------

TEST_CASE("a sequential register history that reads the last write is linearizable") {
  Registers h;
  h.read(1, nil, 0, 1);
  h.write(1, 10, 2, 3);
  h.read(1, 10, 4, 5);
  h.write(1, 20, 6, 7);
  h.read(1, 20, 8, 9);
  const auto r = check_linearizable(h.h);
  CHECK(r.verdict == Verdict::valid);
  CHECK(r.operations == 5);
  CHECK(r.keys == 1);
}

TEST_CASE(
    "a read that returns an overwritten value after the overwrite completed is not "
    "linearizable, and the witness is the two writes and the read") {
  Registers h;
  h.write(1, 10, 0, 1);
  h.write(1, 20, 2, 3);
  h.read(1, 10, 4, 5);  // stale: 20 was acknowledged before the read began
  const auto r = check_linearizable(h.h);
  REQUIRE(r.verdict == Verdict::invalid);
  CHECK(r.key == 1);
  REQUIRE(r.witness.size() == 3);
  CHECK(r.witness[2].kind == HistoryKind::read);
}

TEST_CASE(
    "a read concurrent with a write may return the old or the new value, but once a read "
    "returned the new one a later read may not return the old one") {
  Registers both;
  both.write(1, 10, 0, 100);
  both.read(1, nil, 1, 2);
  both.read(1, 10, 3, 4);
  CHECK(both.verdict() == Verdict::valid);
  Registers inversion;
  inversion.write(1, 10, 0, 100);
  inversion.read(1, 10, 1, 2);
  inversion.read(1, nil, 3, 4);  // new then old, both within the write: not linearizable
  CHECK(inversion.verdict() == Verdict::invalid);
}

TEST_CASE("two writes concurrent with each other may take effect in either order") {
  Registers h;
  h.write(1, 10, 0, 10);
  h.write(1, 20, 1, 9);
  h.read(1, 10, 11, 12);  // 20 then 10
  CHECK(h.verdict() == Verdict::valid);
  Registers flip;
  flip.write(1, 10, 0, 10);
  flip.write(1, 20, 1, 9);
  flip.read(1, 20, 11, 12);  // 10 then 20
  CHECK(flip.verdict() == Verdict::valid);
  flip.read(1, 10, 13, 14);  // but not both orders in one history
  CHECK(flip.verdict() == Verdict::invalid);
}

TEST_CASE("a read of a value nobody wrote is not linearizable") {
  Registers h;
  h.write(1, 10, 0, 1);
  h.read(1, 99, 2, 3);
  CHECK(h.verdict() == Verdict::invalid);
}

TEST_CASE(
    "a failed write never took effect; a write of unknown outcome may take effect any time "
    "after its invocation, or never") {
  Registers failed;
  failed.write(1, 10, 0, 1, HistoryOutcome::fail);
  failed.read(1, 10, 2, 3);
  CHECK(failed.verdict() == Verdict::invalid);
  Registers failed_unseen;
  failed_unseen.write(1, 10, 0, 1, HistoryOutcome::fail);
  failed_unseen.read(1, nil, 2, 3);
  CHECK(failed_unseen.verdict() == Verdict::valid);

  Registers late;
  late.write(1, 10, 0, 1, HistoryOutcome::info);  // timed out at 1
  late.read(1, nil, 5, 6);
  late.read(1, 10, 7, 8);  // it took effect between 6 and 7
  CHECK(late.verdict() == Verdict::valid);
  Registers never;
  never.write(1, 10, 0, 1, HistoryOutcome::pending);  // never answered
  never.read(1, nil, 5, 6);
  CHECK(never.verdict() == Verdict::valid);
  never.read(1, 10, 7, 8);
  never.read(1, nil, 9, 10);  // but it cannot be undone
  CHECK(never.verdict() == Verdict::invalid);
}

TEST_CASE(
    "keys are checked independently: one invalid key makes the history invalid and is "
    "named") {
  Registers h;
  h.write(1, 10, 0, 1);
  h.read(1, 10, 2, 3);
  h.write(2, 10, 0, 1);
  h.write(2, 20, 2, 3);
  h.read(2, 10, 4, 5);
  h.write(3, 30, 0, 1);
  const auto r = check_linearizable(h.h);
  CHECK(r.verdict == Verdict::invalid);
  CHECK(r.keys == 3);
  CHECK(r.invalid_keys == 1);
  CHECK(r.key == 2);
}

TEST_CASE(
    "the witness of a long history with one stale read is just that read and the writes "
    "that make it stale") {
  Registers h;
  Time t = 0;
  for (int i = 1; i <= 200; ++i) {  // write i, then read it back
    h.write(1, i, t, t + 1);
    h.read(1, i, t + 2, t + 3);
    t += 4;
  }
  h.read(1, 150, t, t + 1);  // long after 200 was written
  const auto r = check_linearizable(h.h);
  REQUIRE(r.verdict == Verdict::invalid);
  REQUIRE(r.witness.size() == 3);
  CHECK(r.witness[0].value == 150);
  CHECK(r.witness[2].value == 150);
  CHECK(r.witness[2].kind == HistoryKind::read);
  CHECK(r.witness[1].kind == HistoryKind::write);
  CHECK(r.witness[1].value > 150);
}

TEST_CASE("a search that exceeds its bound says unknown, not valid") {
  Registers h;
  for (int i = 0; i < 12; ++i) h.write(1, i, 0, 100);                   // all concurrent
  for (int i = 0; i < 12; ++i) h.read(1, i, 101 + 2 * i, 102 + 2 * i);  // impossible order
  h.read(1, 0, 200, 201);
  LinearizabilityOptions options;
  options.max_steps_per_key = 50;
  const auto bounded = check_linearizable(h.h, options);
  CHECK(bounded.verdict == Verdict::unknown);
  CHECK(bounded.unknown_keys == 1);
  CHECK(check_linearizable(h.h).verdict == Verdict::invalid);
}

TEST_CASE("a truncated history is unknown to both checkers") {
  History h(2);
  for (int i = 0; i < 3; ++i)
    h.complete(h.invoke(0, HistoryKind::write, 1, i, i), HistoryOutcome::ok, i);
  CHECK(h.dropped() == 1);
  CHECK(check_linearizable(h).verdict == Verdict::unknown);
  CHECK(check_transactions(h).verdict == Verdict::unknown);
}

// ---- transactions ------------------------------------------------------------------------------

TEST_CASE("a serial history of transactions has no anomaly, and its edges are the expected ones") {
  // T0 writes x; T1 reads it and writes y; T2 reads y and overwrites x.
  const auto r = check({{Txn().w(1, 10, nil), ok},
                        {Txn().r(1, 10).w(2, 20, nil), ok},
                        {Txn().r(2, 20).w(1, 30, 10), ok}});
  CHECK(r.verdict == Verdict::valid);
  CHECK(total(r) == 0);
  CHECK(r.committed == 3);
  CHECK(r.wr_edges == 2);  // T0 -> T1 (x), T1 -> T2 (y)
  CHECK(r.ww_edges == 1);  // T0 -> T2 (x)
  CHECK(r.rw_edges == 1);  // T1 read x = 10, which T2 overwrote
}

TEST_CASE(
    "G0: two transactions whose writes to two keys are installed in opposite orders "
    "(dirty write)") {
  // x: T1 then T2; y: T2 then T1.
  const auto r =
      check({{Txn().w(1, 11, nil).w(2, 12, 22), ok}, {Txn().w(1, 21, 11).w(2, 22, nil), ok}});
  CHECK(r.verdict == Verdict::invalid);
  CHECK(r.counts.at("G0") == 1);
  CHECK(total(r) == 1);
  REQUIRE(r.examples.size() == 1);
  CHECK(r.examples[0].cycle.size() == 2);
  CHECK(r.examples[0].cycle[0].kind == "ww");
  CHECK(r.examples[0].cycle[1].kind == "ww");
}

TEST_CASE("G1a: a committed transaction read a version written by an aborted one") {
  const auto r = check({{Txn().w(1, 10, nil), aborted}, {Txn().r(1, 10), ok}});
  CHECK(r.counts.at("G1a") == 1);
  CHECK(total(r) == 1);
  CHECK(r.aborted == 1);
}

TEST_CASE("G1b: a transaction read a version its writer later overwrote itself") {
  const auto r = check({{Txn().w(1, 10, nil).w(1, 11, 10), ok}, {Txn().r(1, 10), ok}});
  CHECK(r.counts.at("G1b") == 1);
  CHECK(total(r) == 1);
  // The final version is fine.
  CHECK(total(check({{Txn().w(1, 10, nil).w(1, 11, 10), ok}, {Txn().r(1, 11), ok}})) == 0);
}

TEST_CASE("G1c: each of two transactions read what the other wrote (circular information flow)") {
  const auto r = check({{Txn().w(1, 10, nil).r(2, 20), ok}, {Txn().w(2, 20, nil).r(1, 10), ok}});
  CHECK(r.counts.at("G1c") == 1);
  CHECK(r.counts.at("G0") == 0);
  CHECK(total(r) == 1);
}

TEST_CASE("G-single: a lost update is a cycle with exactly one anti-dependency") {
  // Both read the initial x; T1 writes 1 on it, T2 writes 2 over T1's 1: T2's read missed T1.
  const auto r = check({{Txn().r(1, nil).w(1, 1, nil), ok}, {Txn().r(1, nil).w(1, 2, 1), ok}});
  CHECK(r.counts.at("G-single") == 1);
  CHECK(total(r) == 1);
  REQUIRE(r.examples.size() == 1);
  CHECK(r.examples[0].cycle.size() == 2);
  int rw = 0;
  for (const auto& e : r.examples[0].cycle) rw += e.kind == "rw";
  CHECK(rw == 1);
}

TEST_CASE("G2: write skew is a cycle of two anti-dependencies, allowed by snapshot isolation") {
  // Doctors on call: both read x and y (on call), T1 takes x off, T2 takes y off.
  const auto r = check(
      {{Txn().r(1, nil).r(2, nil).w(1, 1, nil), ok}, {Txn().r(1, nil).r(2, nil).w(2, 2, nil), ok}});
  CHECK(r.counts.at("G2") == 1);
  CHECK(r.counts.at("G-single") == 0);
  CHECK(total(r) == 1);
  CHECK(r.rw_edges == 2);
}

TEST_CASE("aborted transactions are not in the graph: their versions make no edge") {
  // T2's overwrite of x aborts: T1's read of the initial x then has no anti-dependency.
  const auto r = check(
      {{Txn().r(1, nil).w(2, 5, nil), ok}, {Txn().w(1, 1, nil), aborted}, {Txn().r(2, 5), ok}});
  CHECK(r.verdict == Verdict::valid);
  CHECK(r.rw_edges == 0);
  CHECK(r.wr_edges == 1);
}

TEST_CASE("several independent anomalies are counted one each, by type") {
  const auto r = check({{Txn().r(1, nil).w(1, 1, nil), ok},  // lost update on key 1
                        {Txn().r(1, nil).w(1, 2, 1), ok},
                        {Txn().r(3, nil).r(4, nil).w(3, 3, nil), ok},  // write skew on 3, 4
                        {Txn().r(3, nil).r(4, nil).w(4, 4, nil), ok},
                        {Txn().r(5, nil).w(5, 5, nil), ok},  // another lost update on key 5
                        {Txn().r(5, nil).w(5, 6, 5), ok}});
  CHECK(r.counts.at("G-single") == 2);
  CHECK(r.counts.at("G2") == 1);
  CHECK(total(r) == 3);
}
