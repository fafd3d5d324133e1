// ACID transactions: isolation levels on a multi-version store, and the anomalies each allows.
//
//   every request is one transaction; each read or write takes step_time, so transactions
//   that arrive close together interleave:
//     bank:     transfer(a, b): read a, read b, write a - x, write b + x  | audit: read all
//     doctors:  off_call(me): read me, read partner, if both on call: write me = off
//               on_call(me): read me, write me = on
//     counters: increment(c): read c, write c + 1
//   problem:  read_uncommitted: writes lock their key (no dirty write) but go in place at once;
//             reads take no lock and see them (dirty reads: an audit sums a transfer half done
//             or rolled back)
//   fixes:    read_committed: writes buffered until commit; reads see committed versions only.
//             Still lost updates (two increments read 5, both write 6) and read skew.
//             snapshot_isolation: reads from the snapshot at begin; first committer wins (a
//             transaction that writes a key committed by another since its snapshot aborts):
//             no lost update, no read skew, but write skew (two doctors go off call at once).
//             serializable: strict two-phase locking (shared locks to read, exclusive to
//             write, held to the end; wait-die: an older transaction waits, a younger dies).
//   The history (exp:add{ history = true }) records every transaction's reads and writes with
//   version tags: lab.check_transactions counts the anomalies independently.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Level { read_uncommitted, read_committed, snapshot_isolation, serializable };
enum class Mix { bank, doctors, counters };
enum class Kind : std::uint8_t { transfer, audit, off_call, on_call, increment };

constexpr std::size_t kMaxReads = 8;  // an audit reads every account (accounts <= 8)

/// One committed version of a key.
struct Version {
  std::int64_t value;
  std::int64_t tag;   // unique: what the history records
  std::uint64_t seq;  // commit sequence number of its writer
};

/// A key: its committed versions, the read_uncommitted in-place write, its locks.
struct Key {
  std::vector<Version> versions;  // in commit order; versions[0] is the initial one
  bool dirty = false;             // read_uncommitted: an uncommitted write is in place
  std::int64_t dirty_value = 0, dirty_tag = 0;
  SlotHandle writer;                // exclusive lock holder
  std::vector<SlotHandle> readers;  // shared lock holders (serializable)
  std::vector<SlotHandle> waiters;
};

struct Write {
  std::uint32_t key;
  std::int64_t value;
};

struct Txn {
  Request request;
  Kind kind = Kind::increment;
  std::uint8_t pc = 0, reads = 0, writes = 0;
  std::uint64_t snapshot = 0;  // snapshot_isolation: commits it sees
  std::int64_t amount = 0;
  std::array<std::uint32_t, kMaxReads> keys{};  // the keys it reads, in order
  std::array<std::int64_t, kMaxReads> values{}, tags{};
  std::array<Write, 2> buffered{};
  std::vector<std::uint32_t> locked;  // keys it holds a lock on
  Time waiting_since = -1;
  std::uint32_t recorded = History::kNone;
};

enum class Lock { granted, wait, die };

class Store final : public System {
 public:
  Store(Level level, const Params& p, Context& ctx)
      : level_(level),
        ctx_(ctx),
        step_(p.duration("step_time")),
        abort_share_(p.real("abort_share")),
        audit_share_(p.real("audit_share")),
        committed_metric_(ctx.metric("committed")),
        aborted_metric_(ctx.metric("aborted")),
        history_(ctx.history()) {
    const std::string& mix = p.string("workload");
    mix_ = mix == "bank" ? Mix::bank : mix == "doctors" ? Mix::doctors : Mix::counters;
    std::size_t n = 0;
    std::int64_t initial = 0;
    if (mix_ == Mix::bank) {
      n = p.integer<std::size_t>("accounts");
      initial = p.integer("initial_balance");
    } else if (mix_ == Mix::doctors) {
      n = 2 * p.integer<std::size_t>("shifts");
      initial = 1;  // on call
    } else {
      n = p.integer<std::size_t>("counters");
    }
    keys_.resize(n);
    for (Key& k : keys_) k.versions.push_back({initial, next_tag_++, 0});
    initial_total_ = initial * static_cast<std::int64_t>(n);
  }

  void handle(const Request& r) override {
    const SlotHandle h = txns_.acquire();
    Txn& t = txns_[h];
    std::vector<std::uint32_t> locked = std::move(t.locked);  // keep its capacity
    locked.clear();
    t = Txn{};
    t.locked = std::move(locked);
    t.request = r;
    t.snapshot = commit_seq_;
    const std::uint64_t draw = Rng::hash(r.id ^ ctx_.salt("transaction"));
    const auto n = static_cast<std::uint32_t>(keys_.size());
    const auto pick = [&](int i) { return static_cast<std::uint32_t>(Rng::hash(draw + i) % n); };
    switch (mix_) {
      case Mix::bank:
        if (Rng::uniform_at(draw, 1, 2) < audit_share_) {
          t.kind = Kind::audit;
        } else {
          t.kind = Kind::transfer;
          t.keys[0] = pick(1);
          t.keys[1] =
              (t.keys[0] + 1 + static_cast<std::uint32_t>(Rng::hash(draw + 2) % (n - 1))) % n;
          t.amount = 1 + static_cast<std::int64_t>(Rng::hash(draw + 3) % 10);
        }
        break;
      case Mix::doctors: {
        const std::uint32_t me = pick(1);
        t.kind = Rng::uniform_at(draw, 1, 2) < 0.5 ? Kind::off_call : Kind::on_call;
        t.keys[0] = me;
        t.keys[1] = me ^ 1u;  // the other doctor of the shift
        break;
      }
      case Mix::counters:
        t.kind = Kind::increment;
        t.keys[0] = pick(1);
        break;
    }
    if (history_) t.recorded = history_->begin(r.client, r.arrival);
    step(h);
  }

  Map figures() const override {
    std::int64_t total = 0;
    for (const Key& k : keys_) total += k.versions.back().value;
    return {{"committed", committed_},
            {"aborted", aborted_},
            {"abort_rate", committed_ + aborted_ ? static_cast<double>(aborted_) /
                                                       static_cast<double>(committed_ + aborted_)
                                                 : 0.0},
            {"blocked_ms", committed_ + aborted_ ? to_milliseconds(blocked_) /
                                                       static_cast<double>(committed_ + aborted_)
                                                 : 0.0},
            {"audit_mismatches", audit_mismatches_},
            {"total_drift", mix_ == Mix::bank ? total - initial_total_ : 0},
            {"nobody_on_call", nobody_on_call_},
            {"lost_updates", lost_updates_}};
  }

  void reset_stats() override {
    committed_ = aborted_ = audit_mismatches_ = nobody_on_call_ = lost_updates_ = 0;
    blocked_ = 0;
  }

 private:
  // ---- the transaction program -----------------------------------------------------------------

  /// Run the transaction's next operation; schedule the one after it step_time later.
  void step(SlotHandle h) {
    Txn& t = txns_[h];
    switch (t.kind) {
      case Kind::transfer:
        if (t.pc < 2) return read(h, t.keys[t.pc]);
        if (t.pc == 2) return write(h, t.keys[0], t.values[0] - t.amount);
        if (t.pc == 3) return write(h, t.keys[1], t.values[1] + t.amount);
        return commit(h);
      case Kind::audit:
        if (t.pc < keys_.size()) {
          t.keys[t.pc] = t.pc;
          return read(h, t.pc);
        }
        return commit(h);
      case Kind::off_call:
        if (t.pc < 2) return read(h, t.keys[t.pc]);
        if (t.pc == 2 && t.values[0] + t.values[1] == 2) return write(h, t.keys[0], 0);
        return commit(h);
      case Kind::on_call:
        if (t.pc == 0) return read(h, t.keys[0]);
        if (t.pc == 1) return write(h, t.keys[0], 1);
        return commit(h);
      case Kind::increment:
        if (t.pc == 0) return read(h, t.keys[0]);
        if (t.pc == 1) return write(h, t.keys[0], t.values[0] + 1);
        return commit(h);
    }
  }

  void next(SlotHandle h) {
    ++txns_[h].pc;
    ctx_.after(step_, [this, h] { step(h); });
  }

  void read(SlotHandle h, std::uint32_t key) {
    Txn& t = txns_[h];
    if (level_ == Level::serializable && !lock(h, key, false)) return;
    const Key& k = keys_[key];
    const Version* v = &k.versions.back();
    if (level_ == Level::snapshot_isolation)
      for (auto it = k.versions.rbegin(); it != k.versions.rend(); ++it)
        if (it->seq <= t.snapshot) {
          v = &*it;
          break;
        }
    const bool dirty = level_ == Level::read_uncommitted && k.dirty;
    t.values[t.reads] = dirty ? k.dirty_value : v->value;
    t.tags[t.reads] = dirty ? k.dirty_tag : v->tag;
    if (history_) history_->read(t.recorded, key, t.tags[t.reads]);
    ++t.reads;
    next(h);
  }

  void write(SlotHandle h, std::uint32_t key, std::int64_t value) {
    Txn& t = txns_[h];
    if (level_ != Level::snapshot_isolation && !lock(h, key, true)) return;
    if (level_ == Level::read_uncommitted) {  // in place, visible at once
      Key& k = keys_[key];
      const std::int64_t prev = k.dirty ? k.dirty_tag : k.versions.back().tag;
      k.dirty = true;
      k.dirty_value = value;
      k.dirty_tag = next_tag_++;
      if (history_) history_->write(t.recorded, key, k.dirty_tag, prev);
    }
    t.buffered[t.writes++] = {key, value};
    next(h);
  }

  /// Take a lock for `h` (wait-die). False: it waits (resumed when the lock is released) or it
  /// died (aborted).
  bool lock(SlotHandle h, std::uint32_t key, bool exclusive) {
    Txn& t = txns_[h];
    Key& k = keys_[key];
    bool conflict = false, older_than_all = true;
    auto against = [&](SlotHandle other) {
      if (!other || other == h) return;
      conflict = true;
      older_than_all = older_than_all && t.request.id < txns_[other].request.id;
    };
    against(k.writer);
    if (exclusive)
      for (SlotHandle r : k.readers) against(r);
    if (!conflict) {
      if (t.waiting_since >= 0) {
        blocked_ += ctx_.now() - t.waiting_since;
        t.waiting_since = -1;
      }
      if (exclusive)
        k.writer = h;
      else if (std::find(k.readers.begin(), k.readers.end(), h) == k.readers.end())
        k.readers.push_back(h);
      if (std::find(t.locked.begin(), t.locked.end(), key) == t.locked.end())
        t.locked.push_back(key);
      return true;
    }
    if (!older_than_all) {
      abort(h);
      return false;
    }
    if (t.waiting_since < 0) t.waiting_since = ctx_.now();
    k.waiters.push_back(h);
    return false;
  }

  void release_locks(SlotHandle h) {
    for (std::uint32_t key : txns_[h].locked) {
      Key& k = keys_[key];
      if (k.writer == h) k.writer = SlotHandle{};
      k.readers.erase(std::remove(k.readers.begin(), k.readers.end(), h), k.readers.end());
      for (SlotHandle w : k.waiters)
        ctx_.after(0, [this, w] {
          if (txns_.live(w)) step(w);
        });
      k.waiters.clear();
    }
  }

  void commit(SlotHandle h) {
    Txn& t = txns_[h];
    const bool client_aborts =
        Rng::uniform_at(ctx_.salt("client aborts"), t.request.id, 0) < abort_share_;
    bool conflict = false;  // snapshot isolation: first committer wins
    if (level_ == Level::snapshot_isolation)
      for (std::uint8_t i = 0; i < t.writes; ++i)
        conflict = conflict || keys_[t.buffered[i].key].versions.back().seq > t.snapshot;
    if (client_aborts || conflict) return abort(h);
    const std::uint64_t seq = ++commit_seq_;
    for (std::uint8_t i = 0; i < t.writes; ++i) {
      Key& k = keys_[t.buffered[i].key];
      const std::int64_t prev = k.versions.back().tag;
      std::int64_t tag;
      if (level_ == Level::read_uncommitted) {
        tag = k.dirty_tag;
        k.dirty = false;
      } else {
        tag = next_tag_++;
        if (history_) history_->write(t.recorded, t.buffered[i].key, tag, prev);
      }
      // A write that overwrote a version other than the one its transaction read lost an update.
      for (std::uint8_t j = 0; j < t.reads; ++j)
        if (t.keys[j] == t.buffered[i].key && t.tags[j] != prev && t.kind == Kind::increment)
          ++lost_updates_;
      k.versions.push_back({t.buffered[i].value, tag, seq});
    }
    if (t.kind == Kind::audit) {
      std::int64_t sum = 0;
      for (std::uint8_t j = 0; j < t.reads; ++j) sum += t.values[j];
      audit_mismatches_ += sum != initial_total_;
    }
    if (t.kind == Kind::off_call && t.writes > 0 &&
        keys_[t.keys[0]].versions.back().value + keys_[t.keys[1]].versions.back().value == 0)
      ++nobody_on_call_;
    ++committed_;
    committed_metric_.add(1);
    finish(h, HistoryOutcome::ok, Outcome::ok);
  }

  void abort(SlotHandle h) {
    Txn& t = txns_[h];
    if (level_ == Level::read_uncommitted)  // roll back the in-place writes
      for (std::uint8_t i = 0; i < t.writes; ++i) keys_[t.buffered[i].key].dirty = false;
    if (t.waiting_since >= 0) blocked_ += ctx_.now() - t.waiting_since;
    ++aborted_;
    aborted_metric_.add(1);
    finish(h, HistoryOutcome::fail, Outcome::error);
  }

  void finish(SlotHandle h, HistoryOutcome recorded, Outcome outcome) {
    if (history_) history_->complete(txns_[h].recorded, recorded, ctx_.now());
    release_locks(h);
    ctx_.complete(txns_[h].request, outcome);
    txns_.release(h);
  }

  Level level_;
  Mix mix_ = Mix::bank;
  Context& ctx_;
  Time step_;
  double abort_share_, audit_share_;
  Metric& committed_metric_;
  Metric& aborted_metric_;
  History* history_;  // null unless the script records a history
  std::vector<Key> keys_;
  SlotPool<Txn> txns_;
  std::int64_t next_tag_ = 1;
  std::uint64_t commit_seq_ = 0;
  std::int64_t initial_total_ = 0;
  std::int64_t committed_ = 0, aborted_ = 0, audit_mismatches_ = 0, nobody_on_call_ = 0;
  std::int64_t lost_updates_ = 0;
  Time blocked_ = 0;
};

LessonInfo info() {
  return {
      "acid_transactions",
      "ACID transactions: isolation levels and the anomalies each one allows",
      "Transactions that run concurrently without enough isolation see each other's "
      "half-done work: an audit sums a transfer in the middle (dirty read) or one already "
      "rolled back, two increments of a counter both read 5 and both write 6 (lost update), "
      "two doctors each see the other on call and both go off (write skew).",
      "Stronger isolation levels forbid more anomalies and pay for it: read committed hides "
      "uncommitted writes; snapshot isolation reads a consistent snapshot and aborts the "
      "second of two concurrent writers of a key (no lost update, still write skew); "
      "serializable (strict two-phase locking, wait-die) forbids them all, with lock waits "
      "and aborts. Every claim is checked from the recorded history by an Elle-style "
      "dependency-graph checker (lab.check_transactions).",
      {"PostgreSQL (read committed, repeatable read = snapshot isolation, serializable = SSI)",
       "MySQL InnoDB (repeatable read with next-key locks, serializable with shared locks)",
       "Oracle (read committed, serializable = snapshot isolation)",
       "Jepsen's Elle (Kingsbury & Alvaro 2020), Adya's thesis (1999)"},
      {{"read_uncommitted", true,
        "writes lock their key but are visible at once; reads lock nothing"},
       {"read_committed", false, "reads see committed versions only; writes lock until commit"},
       {"snapshot_isolation", false, "reads from the snapshot at begin; first committer wins"},
       {"serializable", false, "strict two-phase locking (shared/exclusive, wait-die)"}},
      {{"workload",
        ParamType::string,
        "bank",
        "bank (transfers and audits), doctors (on call), counters",
        -1e300,
        1e300,
        {"bank", "doctors", "counters"}},
       {"accounts", ParamType::integer, 8, "bank: accounts", 2, 8},
       {"initial_balance", ParamType::integer, 100, "bank: each account's opening balance", 0, 1e9},
       {"shifts", ParamType::integer, 20, "doctors: shifts of two doctors each", 1, 1e6},
       {"counters", ParamType::integer, 4, "counters: counters", 1, 1e6},
       {"step_time", ParamType::duration, "1ms", "time of one read or write of a transaction", 1e-6,
        10},
       {"abort_share", ParamType::real, 0.05, "share of transactions the client rolls back", 0, 1},
       {"audit_share", ParamType::real, 0.2, "bank: share of audits among the transactions", 0, 1}},
      {},
      {},
      {{"committed", MetricSpec::Kind::counter, "transactions committed"},
       {"aborted", MetricSpec::Kind::counter,
        "transactions aborted (rolled back by the client, or by the store: a conflict, wait-die)"}},
      {{"committed", Unit::count, "transactions committed"},
       {"aborted", Unit::count, "transactions aborted (client rollbacks and conflicts)"},
       {"abort_rate", Unit::fraction, "aborted / (committed + aborted)"},
       {"blocked_ms", Unit::number, "mean time a transaction waited for locks, in milliseconds"},
       {"audit_mismatches", Unit::count, "bank: committed audits whose sum was not the total"},
       {"total_drift", Unit::count, "bank: the final total minus the opening total"},
       {"nobody_on_call", Unit::count, "doctors: commits that left a shift with nobody on call"},
       {"lost_updates", Unit::count,
        "counters: committed increments that overwrote a version they had not read"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Level> levels[] = {
      {"read_uncommitted", Level::read_uncommitted},
      {"read_committed", Level::read_committed},
      {"snapshot_isolation", Level::snapshot_isolation},
      {"serializable", Level::serializable}};
  return std::make_unique<Store>(variant_value(variant, levels), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
