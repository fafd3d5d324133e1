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
//             side's acked writes
//   fix:      cp: no quorum on my side -> reject; the minority is unavailable, the majority
//             stays consistent: zero stale reads, zero divergent writes to reconcile
#include <algorithm>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

/// A client operation at its coordinator.
struct Operation {
  Request request;
  std::uint32_t generation = 0;
  std::uint32_t key = 0;           // key index
  std::uint64_t version = 0;       // write: the version written; read: the highest seen so far
  std::uint64_t acked_before = 0;  // read: the newest version acked to anyone when it started
  std::uint32_t coordinator = 0;
  int needed = 0, replies = 0;
  bool active = false;
};

enum class Kind : std::uint8_t { write, write_ack, read, read_reply };

/// A message in flight between two replicas.
struct Message {
  std::uint32_t op = 0, op_generation = 0;
  std::uint32_t from = 0, to = 0;
  std::uint32_t key = 0;  // key index
  std::uint64_t version = 0;
  Kind kind = Kind::write;
  bool in_flight = false;
};

class QuorumStore final : public System {
 public:
  QuorumStore(bool strict, const Params& p, Context& ctx)
      : strict_(strict),
        ctx_(ctx),
        n_(static_cast<std::uint32_t>(p.integer("replicas"))),
        r_(static_cast<int>(p.integer("read_quorum"))),
        w_(static_cast<int>(p.integer("write_quorum"))),
        delay_min_(p.duration("delay_min")),
        delay_max_(p.duration("delay_max")),
        timeout_(p.duration("request_timeout")),
        stale_metric_(ctx.metric("stale_reads")),
        rejected_metric_(ctx.metric("rejected_no_quorum")) {
    if (r_ > static_cast<int>(n_) || w_ > static_cast<int>(n_))
      throw std::invalid_argument("read_quorum and write_quorum must be at most replicas (" +
                                  std::to_string(n_) + ")");
    if (delay_max_ < delay_min_)
      throw std::invalid_argument("delay_max must be at least delay_min");
    side_.assign(n_, 0);
  }

  void handle(const Request& r) override {
    const std::uint32_t coordinator = r.client % n_;
    int reachable = 0;
    for (std::uint32_t j = 0; j < n_; ++j) reachable += side_[j] == side_[coordinator];
    int needed = r.op == Op::write ? w_ : r_;
    if (reachable < needed) {
      if (strict_) {
        rejected_metric_.add(1);
        return ctx_.complete(r, Outcome::rejected);
      }
      needed = reachable;  // sloppy: whatever this side has
    }
    const std::uint32_t slot = acquire();
    Operation& op = ops_[slot];
    op.request = r;
    op.key = key_index(r.key);
    op.coordinator = coordinator;
    op.needed = needed;
    op.replies = 0;
    if (r.op == Op::write) {
      op.version = ++clock_;
    } else {
      op.version = 0;
      op.acked_before = acked_[op.key];
    }
    for (std::uint32_t j = 0; j < n_; ++j)
      send(r.op == Op::write ? Kind::write : Kind::read, slot, coordinator, j, op.version);
    ctx_.after(timeout_, [this, slot, generation = op.generation] {
      if (!ops_[slot].active || ops_[slot].generation != generation) return;
      ctx_.complete(ops_[slot].request, Outcome::timeout);
      release(slot);
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
      std::fill(side_writes_.begin(), side_writes_.end(), Tally{});
    } else if (fault == "heal") {
      if (!partitioned_) return;
      partitioned_ = false;
      std::fill(side_.begin(), side_.end(), 0);
      reconcile();
    }
  }

  Map figures() const override {
    return {{"stale_reads", stale_reads_},
            {"divergent_at_heal", divergent_at_heal_},
            {"conflict_keys", conflict_keys_},
            {"lww_dropped", lww_dropped_},
            {"divergent_end", divergent_keys(true)}};
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

  void send(Kind kind, std::uint32_t slot, std::uint32_t from, std::uint32_t to,
            std::uint64_t version) {
    if (side_[from] != side_[to]) return;  // dropped by the partition
    std::uint32_t m;
    if (free_messages_.empty()) {
      m = static_cast<std::uint32_t>(messages_.size());
      messages_.emplace_back();
    } else {
      m = free_messages_.back();
      free_messages_.pop_back();
    }
    messages_[m] =
        Message{slot, ops_[slot].generation, from, to, ops_[slot].key, version, kind, true};
    ctx_.after(from == to ? 0 : delay(), [this, m] { deliver(m); });
  }

  void deliver(std::uint32_t m) {
    const Message msg = messages_[m];
    messages_[m].in_flight = false;
    free_messages_.push_back(m);
    if (side_[msg.from] != side_[msg.to]) return;  // a partition started while in flight
    Operation& op = ops_[msg.op];
    const bool current = op.active && op.generation == msg.op_generation;
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
      case Kind::read_reply:
        if (!current) return;
        op.version = std::max(op.version, msg.version);
        if (++op.replies == op.needed) finish(msg.op);
        return;
    }
  }

  void finish(std::uint32_t slot) {
    Operation& op = ops_[slot];
    if (op.request.op == Op::write) {
      acked_[op.key] = std::max(acked_[op.key], op.version);
      if (partitioned_) {
        Tally& t = side_writes_[op.key * 2 + side_[op.coordinator]];
        ++t.count;
        t.newest = std::max(t.newest, op.version);
      }
    } else if (op.version < op.acked_before) {
      ++stale_reads_;
      stale_metric_.add(1);
    }
    ctx_.complete(op.request, Outcome::ok);
    release(slot);
  }

  /// Anti-entropy at heal: every replica takes the highest version of each key (last write
  /// wins). A key written on both sides keeps one side's writes and drops the other's.
  void reconcile() {
    divergent_at_heal_ += divergent_keys();
    for (std::uint32_t k = 0; k < acked_.size(); ++k) {
      const Tally& a = side_writes_[k * 2];
      const Tally& b = side_writes_[k * 2 + 1];
      if (a.count > 0 && b.count > 0) {
        ++conflict_keys_;
        lww_dropped_ += a.newest > b.newest ? b.count : a.count;
      }
      const auto first = versions_.begin() + static_cast<std::ptrdiff_t>(k * n_);
      const std::uint64_t newest = *std::max_element(first, first + n_);
      std::fill(first, first + n_, newest);
    }
    std::fill(side_writes_.begin(), side_writes_.end(), Tally{});
  }

  /// Keys whose replicas disagree; with `landed`, as if the writes in flight had arrived (the
  /// run ends as soon as every client has its answer, before the last replicas are updated).
  std::int64_t divergent_keys(bool landed = false) const {
    std::vector<std::uint64_t> v = versions_;
    if (landed)
      for (const Message& m : messages_)
        if (m.in_flight && m.kind == Kind::write && side_[m.from] == side_[m.to])
          v[m.key * n_ + m.to] = std::max(v[m.key * n_ + m.to], m.version);
    std::int64_t count = 0;
    for (std::uint32_t k = 0; k < acked_.size(); ++k) {
      const auto first = v.begin() + static_cast<std::ptrdiff_t>(k * n_);
      count += std::adjacent_find(first, first + n_, std::not_equal_to<>()) != first + n_;
    }
    return count;
  }

  std::uint32_t acquire() {
    std::uint32_t slot;
    if (free_ops_.empty()) {
      slot = static_cast<std::uint32_t>(ops_.size());
      ops_.emplace_back();
    } else {
      slot = free_ops_.back();
      free_ops_.pop_back();
    }
    ops_[slot].active = true;
    return slot;
  }

  void release(std::uint32_t slot) {
    ops_[slot].active = false;
    ++ops_[slot].generation;
    free_ops_.push_back(slot);
  }

  bool strict_;
  Context& ctx_;
  std::uint32_t n_;
  int r_, w_;
  Time delay_min_, delay_max_, timeout_;
  Metric& stale_metric_;
  Metric& rejected_metric_;
  std::vector<std::uint8_t> side_;  // partition side of each replica
  bool partitioned_ = false;
  std::unordered_map<std::uint64_t, std::uint32_t> keys_;  // key -> index
  std::vector<std::uint64_t> versions_;                    // [key index * n + replica]
  std::vector<std::uint64_t> acked_;  // newest version acked to a client, per key
  std::vector<Tally> side_writes_;    // [key index * 2 + side], during the partition
  std::vector<Operation> ops_;
  std::vector<std::uint32_t> free_ops_;
  std::vector<Message> messages_;
  std::vector<std::uint32_t> free_messages_;
  std::uint64_t clock_ = 0;  // version stamps (a perfectly synchronized clock)
  std::int64_t stale_reads_ = 0, divergent_at_heal_ = 0, conflict_keys_ = 0, lww_dropped_ = 0;
};

class QuorumCap final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const LessonInfo info{
        "quorum_cap",
        "Quorums and CAP: consistency or availability when the network splits",
        "Under a partition an AP store keeps accepting reads and writes on both sides with the "
        "replicas it can reach. Reads miss writes acknowledged on the other side (stale reads), "
        "replicas diverge, and at heal last-write-wins silently discards one side's "
        "acknowledged writes. Quorums with R + W <= N are stale even without a partition.",
        "Strict quorums with R + W > N: every read quorum overlaps the quorum of every acked "
        "write, so no read is stale. A CP store rejects an operation whose side of the "
        "partition cannot gather its quorum: the minority side is unavailable, the data stays "
        "consistent and nothing needs reconciling.",
        {"Cassandra / ScyllaDB consistency levels (ONE, QUORUM, ALL)",
         "Amazon Dynamo (sloppy "
         "quorums, hinted handoff)",
         "Riak (n_val, r, w)", "etcd / ZooKeeper (majority quorum: CP)"},
        {{"ap", true, "accept with the replicas this side can reach; last write wins at heal"},
         {"cp", false, "reject an operation when this side has fewer than W (or R) replicas"}},
        {{"replicas", ParamType::integer, 3, "N: replicas of every key", 1, 63},
         {"read_quorum", ParamType::integer, 2, "R: replies a read waits for", 1, 63},
         {"write_quorum", ParamType::integer, 2, "W: acks a write waits for", 1, 63},
         {"delay_min", ParamType::duration, "1ms", "one-way delay between replicas, lower end", 0,
          10},
         {"delay_max", ParamType::duration, "10ms", "one-way delay, upper end (uniform)", 0, 10},
         {"request_timeout", ParamType::duration, "1s",
          "an operation without enough replies by then times out", 1e-3, 3600}},
        {{"partition",
          "split the replicas: `nodes` on one side, the rest on the other",
          {{"nodes", ParamType::number_list, List{0}, "replicas cut off from the rest", 0, 62}}},
         {"heal", "end the partition; anti-entropy reconciles the replicas (last write wins)", {}}},
        {},
        {{"stale_reads", MetricSpec::Kind::counter,
          "reads older than a write acknowledged before they started"},
         {"rejected_no_quorum", MetricSpec::Kind::counter,
          "operations rejected without a quorum"}}};
    return info;
  }

  std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                Context& ctx) const override {
    if (variant == "ap") return std::make_unique<QuorumStore>(false, params, ctx);
    if (variant == "cp") return std::make_unique<QuorumStore>(true, params, ctx);
    throw std::invalid_argument("unknown variant " + variant);
  }
};

}  // namespace

HLDLAB_PLUGIN(QuorumCap)
