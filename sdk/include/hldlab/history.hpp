/// @file history.hpp
/// @brief A history of operations as clients saw them, for the runtime's checkers
/// (linearizability of registers and key-value stores, transactional anomalies).
///
/// A lesson records what a client asked and what it was told, never its own bookkeeping: an
/// operation is invoked (process, kind, key, value, time) and later completes with an outcome.
/// Recording is on only when a script asks for it (`exp:add{ ..., history = true }`); then
/// Context::history() is not null. Look it up once at build time and test the pointer:
/// @code
///   History* history_ = ctx.history();               // in the constructor
///   ...
///   std::uint32_t h = history_ ? history_->invoke(r.client, HistoryKind::write, r.key, v,
///                                                 ctx_.now()) : History::kNone;
///   ...
///   if (history_) history_->complete(h, HistoryOutcome::ok, ctx_.now());
/// @endcode
///
/// The history covers the whole run: a warm-up (System::reset_stats) does not clear it.
///
/// Outcomes follow Jepsen: `ok` (it happened, with this result), `fail` (it certainly did not
/// happen: rejected before any effect) and `info` (unknown: a timeout, a crash; it may have
/// happened at any time after its invocation). An operation never completed counts as `info`.
///
/// Transactions: begin(), then read()/write() micro-operations in program order, then
/// complete() with ok (committed) or fail (aborted). Every written value must be unique per key
/// (a version tag, not a balance), and a write names the version it overwrote (`prev`, the
/// version the store installed it on top of: what Elle learns from list-append reads), so that
/// the checker knows each key's version order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab {

enum class HistoryKind : std::uint8_t { read, write, txn };
enum class HistoryOutcome : std::uint8_t { pending, ok, fail, info };

/// One recorded operation. `value`: what a write wrote, what a read returned (kNoValue: the key
/// was never written).
struct HistoryOp {
  Time invoked = 0;
  Time completed = -1;  ///< -1: never completed (counts as info)
  std::uint64_t key = 0;
  std::int64_t value = 0;
  std::uint32_t process = 0;
  std::uint32_t first_micro = 0, micro_count = 0;  ///< a transaction's micro-operations
  HistoryKind kind = HistoryKind::read;
  HistoryOutcome outcome = HistoryOutcome::pending;
};

/// One read or write inside a transaction.
struct MicroOp {
  std::uint64_t key = 0;
  std::int64_t value = 0;  ///< read: the version read; write: the version written (unique)
  std::int64_t prev = 0;   ///< write: the version it overwrote (kNoValue: the initial one)
  bool write = false;
};

class History {
 public:
  /// A value no write wrote: what a read of a never-written key returns.
  static constexpr std::int64_t kNoValue = std::numeric_limits<std::int64_t>::min();
  /// The handle of an operation that was not recorded (recording off or the bound reached);
  /// every call taking it does nothing.
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  /// At most `max_ops` operations are kept; later ones are counted in dropped().
  explicit History(std::size_t max_ops) : max_ops_(max_ops) {}

  /// A client operation starts. Returns its handle (kNone once the bound is reached).
  std::uint32_t invoke(std::uint32_t process, HistoryKind kind, std::uint64_t key,
                       std::int64_t value, Time now) {
    if (ops_.size() >= max_ops_) {
      ++dropped_;
      return kNone;
    }
    HistoryOp op;
    op.invoked = now;
    op.key = key;
    op.value = value;
    op.process = process;
    op.kind = kind;
    if (kind == HistoryKind::txn) op.first_micro = static_cast<std::uint32_t>(micro_.size());
    ops_.push_back(op);
    return static_cast<std::uint32_t>(ops_.size() - 1);
  }
  /// It ends: `outcome`, and for an ok read the value it returned.
  void complete(std::uint32_t op, HistoryOutcome outcome, Time now,
                std::int64_t read_value = kNoValue) {
    if (op == kNone) return;
    HistoryOp& o = ops_[op];
    if (o.outcome != HistoryOutcome::pending) return;  // first completion wins
    o.outcome = outcome;
    o.completed = now;
    if (o.kind == HistoryKind::read) o.value = read_value;
  }

  /// A transaction starts (complete() it with ok on commit, fail on abort).
  std::uint32_t begin(std::uint32_t process, Time now) {
    return invoke(process, HistoryKind::txn, 0, 0, now);
  }
  /// Micro-operations of transaction `txn`, in program order. Micro-operations of concurrent
  /// transactions may interleave in any order.
  void read(std::uint32_t txn, std::uint64_t key, std::int64_t version) {
    add_micro(txn, MicroOp{key, version, 0, false});
  }
  void write(std::uint32_t txn, std::uint64_t key, std::int64_t version, std::int64_t prev) {
    add_micro(txn, MicroOp{key, version, prev, true});
  }

  const std::vector<HistoryOp>& ops() const { return ops_; }
  /// The micro-operations of a transaction, in program order.
  std::vector<MicroOp> micro_ops(const HistoryOp& txn) const {
    std::vector<MicroOp> out;
    for (std::uint32_t i = txn.first_micro; i != kNone && out.size() < txn.micro_count;
         i = next_[i])
      out.push_back(micro_[i]);
    return out;
  }
  std::size_t size() const { return ops_.size(); }
  /// Operations not recorded because the bound was reached.
  std::size_t dropped() const { return dropped_; }
  std::size_t max_ops() const { return max_ops_; }
  std::size_t memory_bytes() const {
    return ops_.capacity() * sizeof(HistoryOp) + micro_.capacity() * sizeof(MicroOp) +
           (next_.capacity() + last_.capacity()) * sizeof(std::uint32_t);
  }

 private:
  // Micro-operations of interleaved transactions are stored in arrival order, chained per
  // transaction (first_micro -> next_ -> ...).
  void add_micro(std::uint32_t txn, const MicroOp& m) {
    if (txn == kNone) return;
    HistoryOp& o = ops_[txn];
    const auto index = static_cast<std::uint32_t>(micro_.size());
    micro_.push_back(m);
    next_.push_back(kNone);
    if (last_.size() < ops_.size()) last_.resize(ops_.size(), kNone);
    if (o.micro_count == 0)
      o.first_micro = index;
    else
      next_[last_[txn]] = index;
    last_[txn] = index;
    ++o.micro_count;
  }

  std::size_t max_ops_;
  std::size_t dropped_ = 0;
  std::vector<HistoryOp> ops_;
  std::vector<MicroOp> micro_;
  std::vector<std::uint32_t> next_, last_;
};

}  // namespace hldlab
