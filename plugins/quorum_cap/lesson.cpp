// Quorums and CAP: N replicas, writes wait for W acks, reads for R replies; a partition.
//
//   write(k) -> coordinator (the client's replica) stamps a version, sends it to every replica
//               it can reach, acks the client after W of them applied it
//   read(k)  -> asks every replica it can reach, answers the highest version among R replies
//   R + W > N: every read quorum meets every acked write's quorum -> no stale read
//   problem:  partition{nodes}: the coordinator's side may have fewer than W (or R) replicas.
//             ap (naive): accept anyway with what it can reach (sloppy). Both sides take
//             writes: reads miss writes acked on the other side (stale) and replicas diverge;
//             at heal, last-write-wins keeps the higher version and silently drops the other
//             side's acked writes. With anti_entropy_delay > 0 replicas that missed writes
//             stay behind after the heal until anti-entropy runs: stale reads after the heal
//   fix:      cp: no quorum on my side -> reject; the minority is unavailable, the majority
//             stays consistent: zero stale reads, zero divergent writes to reconcile
//   fix:      hinted_handoff: sloppy like ap, but the coordinator keeps a hint {key, version,
//             replica} for every replica a write could not reach (at most max_hints each);
//             at heal -> send each hint to its replica as a plain write (last write wins):
//             replicas agree again one network delay after the heal, without anti-entropy.
//             Still stale during the partition, still last-write-wins on conflicting keys
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

/// A client operation at its coordinator.
struct Operation {
  Request request;
  EventId timeout;
  std::uint32_t key = 0;           // key index
  std::uint64_t version = 0;       // write: the version written; read: the highest seen so far
  std::uint64_t acked_before = 0;  // read: the newest version acked to anyone when it started
  std::uint32_t coordinator = 0;
  int needed = 0, replies = 0;
  bool after_heal = false;    // read: started after a heal, with no partition
  bool writing_back = false;  // read with read_repair: writing its version back to W replicas
  std::uint32_t recorded = History::kNone;  // its operation in the history, when recording
};

enum class Kind : std::uint8_t { write, write_ack, read, read_reply };

/// A message in flight between two replicas.
struct Message {
  SlotHandle op;  // the client operation it serves; none for a hint being replayed
  std::uint32_t from = 0, to = 0;
  std::uint32_t key = 0;  // key index
  std::uint64_t version = 0;
  Kind kind = Kind::write;
  Time sent = 0;  // for the space-time diagram (sys:trace{...})
};

/// A write the coordinator could not deliver, to replay when the partition heals.
struct Hint {
  std::uint32_t key = 0;  // key index
  std::uint32_t target = 0;
  std::uint64_t version = 0;
};

enum class Mode : std::uint8_t { ap, cp, hinted_handoff };

class QuorumStore final : public System {
 public:
  QuorumStore(Mode mode, const Params& p, Context& ctx)
      : mode_(mode),
        ctx_(ctx),
        n_(p.integer<std::uint32_t>("replicas")),
        r_(p.integer<int>("read_quorum")),
        w_(p.integer<int>("write_quorum")),
        delay_min_(p.duration("delay_min")),
        delay_max_(p.duration("delay_max")),
        timeout_(p.duration("request_timeout")),
        anti_entropy_delay_(p.duration("anti_entropy_delay")),
        max_hints_(p.integer<std::size_t>("max_hints")),
        read_repair_(p.boolean("read_repair")),
        stale_metric_(ctx.metric("stale_reads")),
        rejected_metric_(ctx.metric("rejected_no_quorum")),
        hints_dropped_metric_(ctx.metric("hints_dropped")),
        history_(ctx.history()) {
    if (r_ > static_cast<int>(n_) || w_ > static_cast<int>(n_))
      throw std::invalid_argument("read_quorum and write_quorum must be at most replicas (" +
                                  std::to_string(n_) + ")");
    if (delay_max_ < delay_min_)
      throw std::invalid_argument("delay_max must be at least delay_min");
    side_.assign(n_, 0);
    hints_.resize(n_);
  }

  void handle(const Request& r) override {
    const std::uint32_t coordinator = r.client % n_;
    int reachable = 0;
    for (std::uint32_t j = 0; j < n_; ++j) reachable += side_[j] == side_[coordinator];
    int needed = r.op == Op::write ? w_ : r_;
    if (reachable < needed) {
      if (mode_ == Mode::cp) {
        rejected_metric_.add(1);
        if (history_)  // rejected before any effect: a failed operation
          history_->complete(
              history_->invoke(r.client, r.op == Op::write ? HistoryKind::write : HistoryKind::read,
                               r.key, 0, r.arrival),
              HistoryOutcome::fail, ctx_.now());
        return ctx_.complete(r, Outcome::rejected);
      }
      needed = reachable;  // sloppy: whatever this side has
    }
    const SlotHandle slot = ops_.acquire();
    Operation& op = ops_[slot];
    op.request = r;
    op.key = key_index(r.key);
    op.coordinator = coordinator;
    op.needed = needed;
    op.replies = 0;
    op.writing_back = false;
    if (r.op == Op::write) {
      op.version = ++clock_;
    } else {
      op.version = 0;
      op.acked_before = acked_[op.key];
      op.after_heal = healed_ && !partitioned_;
    }
    if (history_)
      op.recorded = history_->invoke(
          r.client, r.op == Op::write ? HistoryKind::write : HistoryKind::read, r.key,
          r.op == Op::write ? static_cast<std::int64_t>(op.version) : 0, r.arrival);
    for (std::uint32_t j = 0; j < n_; ++j)
      send(r.op == Op::write ? Kind::write : Kind::read, slot, coordinator, j, op.version);
    ops_[slot].timeout = ctx_.after(timeout_, [this, slot] {
      // A write that timed out may have reached replicas: its outcome is unknown.
      if (history_) history_->complete(ops_[slot].recorded, HistoryOutcome::info, ctx_.now());
      ctx_.complete(ops_[slot].request, Outcome::timeout);
      ops_.release(slot);
    });
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "partition") {
      std::fill(side_.begin(), side_.end(), 0);
      for (const Value& v : p["nodes"].as_list()) {
        const std::int64_t node = v.as_int();
        if (node < 0 || node >= static_cast<std::int64_t>(n_))
          throw std::invalid_argument("node " + std::to_string(node) + " does not exist (0.." +
                                      std::to_string(n_ - 1) + ")");
        side_[static_cast<std::size_t>(node)] = 1;
      }
      partitioned_ = true;
      if (ctx_.tracing())
        for (std::uint32_t i = 0; i < n_; ++i)
          if (side_[i]) ctx_.trace_event(static_cast<int>(i), "partitioned off");
      // A pending anti-entropy or divergence check belongs to the last heal: not any more.
      ctx_.cancel(anti_entropy_event_);
      ctx_.cancel(divergence_check_);
      std::fill(side_writes_.begin(), side_writes_.end(), Tally{});
    } else if (fault == "heal") {
      if (!partitioned_) return;
      partitioned_ = false;
      healed_ = true;
      if (ctx_.tracing())
        for (std::uint32_t i = 0; i < n_; ++i)
          if (side_[i]) ctx_.trace_event(static_cast<int>(i), "healed");
      std::fill(side_.begin(), side_.end(), 0);
      divergent_at_heal_ += divergent_keys();
      settle_conflicts();
      divergence_check_ =
          ctx_.after(seconds(1), [this] { divergent_1s_after_heal_ += divergent_keys(true); });
      if (anti_entropy_delay_ == 0)
        anti_entropy();
      else
        anti_entropy_event_ = ctx_.after(anti_entropy_delay_, [this] { anti_entropy(); });
      replay_hints();
    }
  }

  Map figures() const override {
    return {{"stale_reads", stale_reads_},
            {"stale_after_heal", stale_after_heal_},
            {"conflict_keys", conflict_keys_},
            {"lww_dropped", lww_dropped_},
            {"divergent_at_heal", divergent_at_heal_},
            {"divergent_1s_after_heal", divergent_1s_after_heal_},
            {"hints_replayed", hints_replayed_}};
  }

  void reset_stats() override {
    stale_reads_ = stale_after_heal_ = conflict_keys_ = lww_dropped_ = 0;
    divergent_at_heal_ = divergent_1s_after_heal_ = hints_replayed_ = 0;
  }

 private:
  /// Acked writes of one key on one side of the current partition.
  struct Tally {
    std::int64_t count = 0;
    std::uint64_t newest = 0;
  };

  std::uint32_t key_index(std::uint64_t key) {
    auto [it, inserted] = keys_.try_emplace(key, static_cast<std::uint32_t>(acked_.size()));
    if (inserted) {
      acked_.push_back(0);
      versions_.resize(versions_.size() + n_, 0);
      side_writes_.resize(side_writes_.size() + 2);
    }
    return it->second;
  }

  Time delay() {
    const Time span = delay_max_ - delay_min_;
    return delay_min_ +
           (span > 0 ? static_cast<Time>(ctx_.rng().below(static_cast<std::uint64_t>(span) + 1))
                     : 0);
  }

  /// A message on the space-time diagram (a coordinator's message to itself is not drawn).
  void trace(const Message& msg, const char* note) {
    if (msg.from == msg.to) return;
    static const char* names[] = {"write", "write ack", "read", "read reply"};
    ctx_.trace_message(static_cast<int>(msg.from), static_cast<int>(msg.to),
                       msg.sent ? msg.sent : ctx_.now(),
                       std::string(names[static_cast<int>(msg.kind)]) + " key " +
                           std::to_string(msg.key) + " v" + std::to_string(msg.version) + note);
  }

  void send(Kind kind, SlotHandle op, std::uint32_t from, std::uint32_t to, std::uint64_t version) {
    post(Message{op, from, to, ops_[op].key, version, kind});
  }

  void post(const Message& msg) {
    if (side_[msg.from] != side_[msg.to]) return lost(msg);  // dropped by the partition
    const SlotHandle m = messages_.acquire();
    messages_[m] = msg;
    messages_[m].sent = ctx_.now();
    ctx_.after(msg.from == msg.to ? 0 : delay(), [this, m] { deliver(m); });
  }

  /// A message the partition dropped. The coordinator of a lost write (its sender) keeps a hint
  /// when it hands off: at once if the replica was unreachable when it sent, and for a write
  /// lost in flight as it would when that replica's ack does not come.
  void lost(const Message& msg) {
    if (ctx_.tracing()) trace(msg, " (dropped by the partition)");
    if (mode_ != Mode::hinted_handoff || msg.kind != Kind::write) return;
    std::vector<Hint>& hints = hints_[msg.from];
    if (hints.size() >= max_hints_) {
      hints_dropped_metric_.add(1);
      return;
    }
    hints.push_back(Hint{msg.key, msg.to, msg.version});
  }

  void deliver(SlotHandle m) {
    const Message msg = messages_[m];
    messages_.release(m);
    if (side_[msg.from] != side_[msg.to]) return lost(msg);  // a partition started in flight
    if (ctx_.tracing()) trace(msg, "");
    const bool current = ops_.live(msg.op);  // its operation still waits
    switch (msg.kind) {
      case Kind::write: {  // replica applies (last write wins), acks
        std::uint64_t& v = versions_[msg.key * n_ + msg.to];
        v = std::max(v, msg.version);
        if (current) send(Kind::write_ack, msg.op, msg.to, msg.from, msg.version);
        return;
      }
      case Kind::read:
        if (current)
          send(Kind::read_reply, msg.op, msg.to, msg.from, versions_[msg.key * n_ + msg.to]);
        return;
      case Kind::write_ack:
      case Kind::read_reply: {
        if (!current) return;
        Operation& op = ops_[msg.op];
        // A read writing back waits for write acks only (late read replies do not count).
        const bool acks = op.request.op == Op::write || op.writing_back;
        if ((msg.kind == Kind::write_ack) != acks) return;
        if (!op.writing_back) op.version = std::max(op.version, msg.version);
        if (++op.replies == op.needed) finish(msg.op);
        return;
      }
    }
  }

  /// At heal, every coordinator sends its hints, in the order it stored them, as plain writes
  /// (no client waits for them); the hint lists keep their capacity for the next partition.
  void replay_hints() {
    for (std::uint32_t c = 0; c < n_; ++c) {
      for (const Hint& h : hints_[c]) {
        ++hints_replayed_;
        post(Message{SlotHandle{}, c, h.target, h.key, h.version, Kind::write});
      }
      hints_[c].clear();
    }
  }

  void finish(SlotHandle slot) {
    Operation& op = ops_[slot];
    if (read_repair_ && op.request.op == Op::read && !op.writing_back && op.version > 0) {
      // ABD's second phase: write the version read back to a write quorum before answering,
      // so that no later read can return an older one.
      op.writing_back = true;
      op.replies = 0;
      int reachable = 0;
      for (std::uint32_t j = 0; j < n_; ++j) reachable += side_[j] == side_[op.coordinator];
      op.needed = std::min(w_, reachable);
      for (std::uint32_t j = 0; j < n_; ++j) send(Kind::write, slot, op.coordinator, j, op.version);
      return;
    }
    if (op.request.op == Op::write) {
      acked_[op.key] = std::max(acked_[op.key], op.version);
      if (partitioned_) {
        Tally& t = side_writes_[op.key * 2 + side_[op.coordinator]];
        ++t.count;
        t.newest = std::max(t.newest, op.version);
      }
    } else if (op.version < op.acked_before) {
      ++stale_reads_;
      stale_after_heal_ += op.after_heal;
      stale_metric_.add(1);
    }
    ctx_.cancel(op.timeout);
    if (history_)
      history_->complete(
          op.recorded, HistoryOutcome::ok, ctx_.now(),
          op.version == 0 ? History::kNoValue : static_cast<std::int64_t>(op.version));
    ctx_.complete(op.request, Outcome::ok);
    ops_.release(slot);
  }

  /// At heal: keys acked on both sides of the partition are conflicts. Last write wins keeps
  /// the side with the higher version and drops the other side's acked writes, whether
  /// anti-entropy or hinted handoff brings the versions together.
  void settle_conflicts() {
    for (std::uint32_t k = 0; k < acked_.size(); ++k) {
      const Tally& a = side_writes_[k * 2];
      const Tally& b = side_writes_[k * 2 + 1];
      if (a.count > 0 && b.count > 0) {
        ++conflict_keys_;
        lww_dropped_ += a.newest > b.newest ? b.count : a.count;
      }
    }
    std::fill(side_writes_.begin(), side_writes_.end(), Tally{});
  }

  /// Anti-entropy (at heal, or anti_entropy_delay later): every replica takes the highest
  /// version of each key (last write wins).
  void anti_entropy() {
    for (std::uint32_t k = 0; k < acked_.size(); ++k) {
      const auto first = versions_.begin() + static_cast<std::ptrdiff_t>(k * n_);
      const std::uint64_t newest = *std::max_element(first, first + n_);
      std::fill(first, first + n_, newest);
    }
  }

  /// Keys whose replicas disagree; with `landed`, as if the clients' writes in flight had
  /// arrived (a write is always in flight somewhere under load). Hints in flight count as not
  /// arrived: a replica that waits for one is behind.
  std::int64_t divergent_keys(bool landed = false) {
    std::vector<std::uint64_t> v = versions_;
    if (landed)
      messages_.for_each([&](SlotHandle, const Message& m) {
        if (m.kind == Kind::write && m.op && side_[m.from] == side_[m.to])
          v[m.key * n_ + m.to] = std::max(v[m.key * n_ + m.to], m.version);
      });
    std::int64_t count = 0;
    for (std::uint32_t k = 0; k < acked_.size(); ++k) {
      const auto first = v.begin() + static_cast<std::ptrdiff_t>(k * n_);
      count += std::adjacent_find(first, first + n_, std::not_equal_to<>()) != first + n_;
    }
    return count;
  }

  Mode mode_;
  Context& ctx_;
  std::uint32_t n_;
  int r_, w_;
  Time delay_min_, delay_max_, timeout_, anti_entropy_delay_;
  std::size_t max_hints_;  // per coordinator
  bool read_repair_;
  Metric& stale_metric_;
  Metric& rejected_metric_;
  Metric& hints_dropped_metric_;
  History* history_;                // null unless the script records a history
  std::vector<std::uint8_t> side_;  // partition side of each replica
  bool partitioned_ = false;
  bool healed_ = false;                                    // at least one heal so far
  EventId anti_entropy_event_, divergence_check_;          // after the last heal
  std::unordered_map<std::uint64_t, std::uint32_t> keys_;  // key -> index
  std::vector<std::uint64_t> versions_;                    // [key index * n + replica]
  std::vector<std::uint64_t> acked_;  // newest version acked to a client, per key
  std::vector<Tally> side_writes_;    // [key index * 2 + side], during the partition
  SlotPool<Operation> ops_;
  SlotPool<Message> messages_;            // in flight
  std::vector<std::vector<Hint>> hints_;  // per coordinator, in the order stored
  std::uint64_t clock_ = 0;               // version stamps (a perfectly synchronized clock)
  std::int64_t stale_reads_ = 0, stale_after_heal_ = 0, conflict_keys_ = 0, lww_dropped_ = 0;
  std::int64_t divergent_at_heal_ = 0, divergent_1s_after_heal_ = 0;
  std::int64_t hints_replayed_ = 0;
};

LessonInfo info() {
  return {
      "quorum_cap",
      "Quorums and CAP: consistency or availability when the network splits",
      "Under a partition an AP store keeps accepting reads and writes on both sides with the "
      "replicas it can reach. Reads miss writes acknowledged on the other side (stale reads), "
      "replicas diverge, and at heal last-write-wins silently discards one side's "
      "acknowledged writes. Quorums with R + W <= N are stale even without a partition.",
      "Strict quorums with R + W > N: every read quorum overlaps the quorum of every acked "
      "write, so no read is stale. A CP store rejects an operation whose side of the "
      "partition cannot gather its quorum: the minority side is unavailable, the data stays "
      "consistent and nothing needs reconciling. Hinted handoff (an AP fix for the heal): the "
      "coordinator keeps a hint for every replica a write could not reach and replays them "
      "when the partition heals, so replicas agree again within a network delay instead of "
      "waiting for anti-entropy (it does not prevent stale reads during the partition nor "
      "last-write-wins losses).",
      {"Cassandra / ScyllaDB consistency levels (ONE, QUORUM, ALL)",
       "Amazon Dynamo (sloppy "
       "quorums, hinted handoff)",
       "Riak (n_val, r, w)", "etcd / ZooKeeper (majority quorum: CP)"},
      {{"ap", true, "accept with the replicas this side can reach; last write wins at heal"},
       {"cp", false, "reject an operation when this side has fewer than W (or R) replicas"},
       {"hinted_handoff", false,
        "like ap, and the coordinator keeps a hint per unreachable replica of a write; hints "
        "are replayed as writes at heal"}},
      {{"replicas", ParamType::integer, 3, "N: replicas of every key", 1, 63},
       {"read_quorum", ParamType::integer, 2, "R: replies a read waits for", 1, 63},
       {"write_quorum", ParamType::integer, 2, "W: acks a write waits for", 1, 63},
       {"delay_min", ParamType::duration, "1ms", "one-way delay between replicas, lower end", 0,
        10},
       {"delay_max", ParamType::duration, "10ms", "one-way delay, upper end (uniform)", 0, 10},
       {"request_timeout", ParamType::duration, "1s",
        "an operation without enough replies by then times out", 1e-3, 3600},
       {"anti_entropy_delay", ParamType::duration, "0s",
        "full last-write-wins reconciliation this long after a heal (0: at the heal; skipped "
        "if a new partition began meanwhile)",
        0, 86400},
       {"max_hints", ParamType::integer, 100000,
        "hinted_handoff: hints a coordinator keeps; more are dropped (metric hints_dropped)", 0,
        1e9},
       {"read_repair", ParamType::boolean, false,
        "a read writes the version it returns back to W replicas before answering (ABD): "
        "quorum reads and writes become linearizable"}},
      {{"partition",
        "split the replicas: `nodes` on one side, the rest on the other",
        {{"nodes", ParamType::number_list, List{0}, "replicas cut off from the rest", 0, 62}}},
       {"heal",
        "end the partition; coordinators replay their hints (hinted_handoff); anti-entropy "
        "reconciles the replicas (last write wins) anti_entropy_delay later",
        {}}},
      {},
      {{"stale_reads", MetricSpec::Kind::counter,
        "reads older than a write acknowledged before they started"},
       {"rejected_no_quorum", MetricSpec::Kind::counter, "operations rejected without a quorum"},
       {"hints_dropped", MetricSpec::Kind::counter,
        "hints not kept because the coordinator already held max_hints"}},
      {{"stale_reads", Unit::count, "reads older than a write acknowledged before they started"},
       {"stale_after_heal", Unit::count, "stale reads that started after a heal"},
       {"conflict_keys", Unit::count, "keys acknowledged on both sides of a partition"},
       {"lww_dropped", Unit::count, "acknowledged writes last-write-wins dropped at heal"},
       {"divergent_at_heal", Unit::count, "keys whose replicas disagreed at the heal"},
       {"divergent_1s_after_heal", Unit::count, "keys whose replicas still disagreed 1 s later"},
       {"hints_replayed", Unit::count, "hints sent to their replicas at heal"}},
      // Replicas only exchange messages: the workload's service time plays no part, so the
      // generic `slow` fault does not apply.
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Mode> modes[] = {
      {"ap", Mode::ap}, {"cp", Mode::cp}, {"hinted_handoff", Mode::hinted_handoff}};
  return std::make_unique<QuorumStore>(variant_value(variant, modes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
