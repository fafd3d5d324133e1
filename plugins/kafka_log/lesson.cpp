// From an in-memory queue to a partitioned, replicated, append-only log (Kafka's model).
//
//   problem:  in_memory_queue -> one queue on one broker; competing consumers take the next
//             message; an acked message is deleted. No replay after a consumer bug (what was
//             consumed is gone), per-key order is lost as soon as two consumers run in parallel,
//             and a broker crash loses everything queued.
//   fix:      partitioned_log -> records appended to partition hash(key) % P and kept for
//             `retention`; a consumer group splits the partitions (one consumer each), reads in
//             offset order and commits offsets after processing; a group can rewind (replay).
//             Every partition has 3 replicas: the producer's write is acknowledged once the
//             in-sync replicas have it (acks=all, min.insync.replicas); a crashed leader is
//             replaced by an in-sync replica (clean election); rebalances are cooperative.
//   each naive variant is partitioned_log with one thing wrong:
//             round_robin       records spread round-robin, not by key: per-key order is lost
//             commit_before     offsets committed when a batch is fetched: a crash skips the
//                               rest of the batch (commit after: the processed part runs again)
//             acks_1            the leader acks at once: acked records not yet on the follower
//                               that becomes leader are lost
//             unclean_election  an out-of-sync replica may become leader: it lacks acked records
//             eager_rebalance   every membership change stops every partition (stop the world);
//                               cooperative rebalancing only pauses the partitions that move
//
// Model: one request = one record produced (key, service time = the consumer's work). Three
// brokers; every partition has a replica on each, its leader is broker p % 3 at first. A
// follower applies a record `replication_lag` (x its slow factor) after the leader appended it;
// it is in sync (ISR) while alive and lagging by at most `replica_lag_max`. Consumers read up to
// the high watermark (what every in-sync replica has). Each consumer is an SDK Server of one
// worker: it fetches up to `batch` records of one of its partitions, processes them one by one
// (the record's service time), commits, and moves on to its next partition (round robin).
#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/fifo.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/placement.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant {
  in_memory_queue,
  round_robin,
  commit_before,
  acks_1,
  unclean_election,
  eager_rebalance,
  partitioned_log
};

constexpr int kBrokers = 3;
constexpr int kNone = -1;

/// Per key: records produced, and 1 + the highest seq consumed (to spot a late record).
struct KeyOrder {
  std::uint32_t produced = 0;
  std::uint32_t seen = 0;
};

/// Workload key -> a dense index (0, 1, 2, ... in order of first appearance): open addressing
/// with linear probing on a power-of-two table, so a record costs one short probe sequence
/// (std::unordered_map chases a pointer per lookup: half the lesson's time at 100 000 keys).
class KeyIndex {
 public:
  std::uint32_t find_or_add(std::uint64_t key) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = Rng::hash(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (!s.used) {
        s = {key, size_++, true};
        return s.index;
      }
      if (s.key == key) return s.index;
    }
  }

 private:
  struct Slot {
    std::uint64_t key = 0;
    std::uint32_t index = 0;
    bool used = false;
  };
  void grow() {
    std::vector<Slot> old(slots_.empty() ? 64 : 2 * slots_.size());
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (!s.used) continue;
      std::size_t i = Rng::hash(s.key) & mask;
      while (slots_[i].used) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::uint32_t size_ = 0;
};

/// One record of a partition's log (the queue keeps its messages in partition 0's log too).
struct Record {
  std::uint32_t key = 0;  // index of the key's KeyOrder
  std::uint32_t seq = 0;  // the producer's order among the records of its key
  Time appended = 0;
  Time work = 0;               // the consumer's processing time
  std::uint32_t epoch = 0;     // the leader epoch that appended it
  std::uint8_t processed = 0;  // times a consumer processed it
  bool acked = false;          // the producer was told it is written
};

struct Partition {
  std::vector<Record> log;  // offset = index; truncated at an election
  int leader = 0;           // kNone: offline
  std::uint32_t epoch = 0;
  std::array<std::size_t, kBrokers> applied{};  // replicas' log end (kept monotone)
  std::uint8_t eligible = 0;                    // offline: brokers that may lead when back (bit b)
  int owner = kNone;                            // the consumer it is assigned to
  std::size_t position = 0;                     // next offset the owner fetches
  std::size_t committed = 0;                    // the group's committed offset
  std::size_t replay_until = 0;  // offsets below it processed again are a replay, not duplicates
  Time paused_until = 0;         // a rebalance: nobody consumes it before
  bool draining = false;         // its previous owner is finishing its batch
  std::uint32_t generation = 0;  // bumped at every reassignment or rewind: stale batches stop
};

struct Consumer {
  std::unique_ptr<Server<std::uint64_t>> worker;  // job: (partition << 40) | offset
  bool alive = true;
  bool member = true;  // in the group (a crashed consumer stays one until its session expires)
  std::vector<int> partitions;
  std::size_t next_pick = 0;
  int batch_partition = kNone;  // the batch in progress
  std::size_t batch_end = 0;
  std::uint32_t batch_generation = 0;
};

/// A produce request waiting for its acknowledgement (acks=all) and/or its replication.
struct Produce {
  Request request;
  int partition = 0;
  std::size_t offset = 0;
  std::uint32_t epoch = 0;
  bool answered = false;
};

std::uint64_t job(int partition, std::size_t offset) {
  return static_cast<std::uint64_t>(partition) << 40 | offset;
}

class KafkaLog final : public System {
 public:
  KafkaLog(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        batch_(p.integer<std::size_t>("batch")),
        hop_(p.duration("hop")),
        replication_lag_(p.duration("replication_lag")),
        replica_lag_max_(p.duration("replica_lag_max")),
        min_insync_(p.integer<int>("min_insync")),
        election_delay_(p.duration("election_delay")),
        session_timeout_(p.duration("session_timeout")),
        rebalance_time_(p.duration("rebalance_time")),
        retention_(p.duration("retention")),
        produced_metric_(ctx.metric("records_produced")),
        consumed_metric_(ctx.metric("records_consumed")),
        lost_metric_(ctx.metric("acked_lost")),
        duplicates_metric_(ctx.metric("duplicates")),
        disorder_metric_(ctx.metric("out_of_order")),
        pause_metric_(ctx.metric("rebalance_pause_seconds")),
        lag_metric_(ctx.metric("consumer_lag")),
        offline_metric_(ctx.metric("offline_partitions")),
        isr_metric_(ctx.metric("under_replicated_partitions")) {
    partitions_.resize(queue() ? 1 : p.integer<std::size_t>("partitions"));
    for (std::size_t i = 0; i < partitions_.size(); ++i)
      partitions_[i].leader = static_cast<int>(i % kBrokers);
    slow_.fill(1.0);
    const auto consumers = p.integer<int>("consumers");
    for (int c = 0; c < consumers; ++c) add_consumer();
    if (!queue()) assign(0);  // the group's first assignment: no pause
  }

  // ---- producing ------------------------------------------------------------------------------

  void handle(const Request& r) override {
    const int p = pick_partition(r);
    Partition& part = partitions_[p];
    if (queue() ? !broker_alive_[0] : part.leader == kNone)
      return ctx_.complete(r, Outcome::error);  // no broker takes it
    if (acks_all() && insync_count(p) < min_insync_)
      return ctx_.complete(r, Outcome::error);  // NotEnoughReplicas
    // One lookup per record: the record keeps its key's index for the consumer.
    const std::uint32_t k = key_index_.find_or_add(r.key);
    if (k == keys_.size()) keys_.emplace_back();
    part.log.push_back({k, keys_[k].produced++, ctx_.now(), r.service, part.epoch});
    ++produced_;
    produced_metric_.add(1);
    changed_lag();
    if (queue()) {
      part.log.back().acked = true;
      queued_.push_back(part.log.size() - 1);
      acknowledge(r);
      return dispatch_queue();
    }
    const SlotHandle h = produces_.acquire();
    produces_[h] = {r, p, part.log.size() - 1, part.epoch, false};
    if (!acks_all()) {  // acks=1: the leader has it
      part.log.back().acked = true;
      acknowledge(r);
      produces_[h].answered = true;
    }
    ctx_.after(replicated_at(p, part.log.size() - 1) - ctx_.now(), [this, h] { replicated(h); });
  }

  // ---- faults and operations ------------------------------------------------------------------

  void inject(const std::string& fault, const Value& p) override {
    const Time duration = p["duration"].as_int();
    if (fault == "crash_broker") {
      const int b = static_cast<int>(p["broker"].as_int());
      crash_broker(b);
      ctx_.after(duration, [this, b] { restart_broker(b); });
    } else if (fault == "slow_broker") {
      const int b = static_cast<int>(p["broker"].as_int());
      refresh_applied(b);  // what it has so far stays applied
      slow_[b] = p["factor"].as_double();
      update_replication_gauges();
      ctx_.after(duration, [this, b] {
        refresh_applied(b);
        slow_[b] = 1;
        update_replication_gauges();
      });
    } else if (fault == "crash_consumer") {
      const int c = static_cast<int>(p["consumer"].as_int());
      if (c >= static_cast<int>(consumers_.size()))
        throw std::invalid_argument("no consumer " + std::to_string(c));
      crash_consumer(c);
      ctx_.after(duration, [this, c] { restart_consumer(c); });
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "add_consumer") {
      add_consumer();
      if (!queue()) rebalance();
      dispatch_all();
    } else if (op == "remove_consumer") {
      const int c = static_cast<int>(args["consumer"].as_int());
      if (c >= static_cast<int>(consumers_.size()) || !consumers_[c].member)
        throw std::invalid_argument("consumer " + std::to_string(c) + " is not in the group");
      consumers_[c].member = false;  // a clean leave: it finishes its batch, the group rebalances
      if (!queue()) rebalance();
    } else if (op == "replay") {
      replay(args["from"].as_int());
    }
    return status();
  }

  Map figures() const override {
    std::int64_t skipped = 0;
    for (const Partition& part : partitions_)
      for (std::size_t o = 0; o < std::min(part.committed, part.log.size()); ++o)
        skipped += part.log[o].processed == 0 && part.log[o].appended >= counted_from_;
    if (queue()) skipped = 0;  // a queue has no offsets to skip
    Map f{{"produced", produced_},
          {"consumed", consumed_},
          {"acked_lost", acked_lost_},
          {"duplicates", duplicates_},
          {"skipped", skipped},
          {"out_of_order", out_of_order_},
          {"replayed", replayed_},
          {"unrecoverable", unrecoverable_},
          {"lag_p99", to_seconds(lag_.quantile(0.99))},
          {"lag_max", to_seconds(lag_.max())},
          {"idle_consumers", idle_consumers()}};
    if (!queue()) {
      f["rebalances"] = rebalances_;
      f["rebalance_pause"] = to_seconds(pause_ns_);
    }
    return f;
  }

  void reset_stats() override {
    produced_ = consumed_ = acked_lost_ = duplicates_ = out_of_order_ = replayed_ = 0;
    unrecoverable_ = rebalances_ = 0;
    pause_ns_ = 0;
    lag_.reset();
    counted_from_ = ctx_.now();
  }

 private:
  bool queue() const { return variant_ == Variant::in_memory_queue; }
  bool acks_all() const { return variant_ != Variant::acks_1 && !queue(); }
  bool commit_first() const { return variant_ == Variant::commit_before; }
  bool eager() const { return variant_ == Variant::eager_rebalance; }

  int pick_partition(const Request& r) {
    if (queue()) return 0;
    if (variant_ == Variant::round_robin)
      return static_cast<int>(round_robin_++ % partitions_.size());
    return static_cast<int>(placement::hash_key(r.key) % partitions_.size());
  }

  /// The producer hears "written" one hop later.
  void acknowledge(const Request& r) {
    const SlotHandle a = acks_.acquire();
    acks_[a] = r;
    ctx_.after(hop_, [this, a] {
      ctx_.complete(acks_[a], Outcome::ok);
      acks_.release(a);
    });
  }

  // ---- replication ----------------------------------------------------------------------------

  Time lag_of(int b) const { return scale_time(replication_lag_, slow_[b]); }
  bool in_sync(int p, int b) const {
    return broker_alive_[b] && (b == partitions_[p].leader || lag_of(b) <= replica_lag_max_);
  }
  int insync_count(int p) const {
    int n = 0;
    for (int b = 0; b < kBrokers; ++b) n += in_sync(p, b);
    return n;
  }

  /// Replica b's log end in partition p: the records appended at least its lag ago (it fetches
  /// continuously), never less than it had; frozen while b is dead.
  std::size_t applied(int p, int b) {
    Partition& part = partitions_[p];
    if (b == part.leader) return part.log.size();
    if (!broker_alive_[b] || part.leader == kNone) return part.applied[b];  // nobody to fetch from
    const Time horizon = ctx_.now() - lag_of(b);
    std::size_t& end = part.applied[b];  // appends are in time order: advance from where it was
    while (end < part.log.size() && part.log[end].appended <= horizon) ++end;
    return end;
  }
  void refresh_applied(int b) {
    for (int p = 0; p < static_cast<int>(partitions_.size()); ++p)
      if (partitions_[p].leader != kNone) applied(p, b);
  }

  /// The high watermark: what every in-sync replica has. Consumers read below it.
  std::size_t high_watermark(int p) {
    Partition& part = partitions_[p];
    if (queue()) return part.log.size();
    if (part.leader == kNone) return std::min(part.committed, part.log.size());
    std::size_t hw = part.log.size();
    for (int b = 0; b < kBrokers; ++b)
      if (in_sync(p, b)) hw = std::min(hw, applied(p, b));
    return hw;
  }

  /// When every in-sync follower will have offset `o` of partition p.
  Time replicated_at(int p, std::size_t o) const {
    const Partition& part = partitions_[p];
    Time at = part.log[o].appended;
    for (int b = 0; b < kBrokers; ++b)
      if (b != part.leader && in_sync(p, b)) at = std::max(at, part.log[o].appended + lag_of(b));
    return std::max(at, ctx_.now());
  }

  /// The record's replication to the in-sync replicas is due: acks=all answers the producer
  /// now; consumers of the partition may read further.
  void replicated(SlotHandle h) {
    Produce& pr = produces_[h];
    Partition& part = partitions_[pr.partition];
    const bool gone = pr.offset >= part.log.size() || part.log[pr.offset].epoch != pr.epoch;
    if (!gone && part.leader != kNone && high_watermark(pr.partition) <= pr.offset) {
      // A follower slowed down meanwhile (still in sync): wait for it.
      ctx_.after(std::max<Time>(1, replicated_at(pr.partition, pr.offset) - ctx_.now()),
                 [this, h] { replicated(h); });
      return;
    }
    if (!pr.answered) {
      if (gone || part.leader == kNone || insync_count(pr.partition) < min_insync_) {
        ctx_.complete(pr.request, Outcome::error);  // the producer sees a timeout or NotLeader
      } else {
        part.log[pr.offset].acked = true;
        acknowledge(pr.request);
      }
    }
    const int p = pr.partition;
    produces_.release(h);
    wake_owner(p);
  }

  void crash_broker(int b) {
    if (!broker_alive_[b]) return;
    refresh_applied(b);
    broker_alive_[b] = false;
    ctx_.log("broker " + std::to_string(b) + " crashed");
    if (queue()) {
      if (b != 0) return;
      // The in-memory queue lives on broker 0: what it held is gone.
      Partition& part = partitions_[0];
      while (!queued_.empty()) {
        const std::size_t o = queued_.pop_front();
        if (part.log[o].acked && part.log[o].processed == 0) ++acked_lost_, lost_metric_.add(1);
      }
      changed_lag();
      return;
    }
    for (int p = 0; p < static_cast<int>(partitions_.size()); ++p) {
      Partition& part = partitions_[p];
      if (part.leader != b) continue;
      for (int i = 0; i < kBrokers; ++i) applied(p, i);  // the followers stop fetching now
      part.leader = kNone;  // offline until the controller elects a new leader
      part.eligible = 0;
      for (int i = 0; i < kBrokers; ++i)
        if (i == b || lag_of(i) <= replica_lag_max_)
          part.eligible |= static_cast<std::uint8_t>(1u << i);
      part.applied[b] = part.log.size();
      ctx_.after(election_delay_, [this, p] { elect(p); });
    }
    update_replication_gauges();
  }

  void restart_broker(int b) {
    broker_alive_[b] = true;
    ctx_.log("broker " + std::to_string(b) + " restarted");
    if (queue()) return;
    for (int p = 0; p < static_cast<int>(partitions_.size()); ++p) {
      Partition& part = partitions_[p];
      part.applied[b] = std::min(part.applied[b], part.log.size());
      // An offline partition comes back with a replica that was in sync when it went down.
      if (part.leader == kNone && ((part.eligible >> b) & 1u)) make_leader(p, b);
    }
    update_replication_gauges();
  }

  /// The controller picks a new leader: the in-sync replica with the longest log (clean), or,
  /// with unclean election, any live replica when no in-sync one is left.
  void elect(int p) {
    Partition& part = partitions_[p];
    if (part.leader != kNone) return;
    int best = kNone;
    for (int b = 0; b < kBrokers; ++b) {
      if (!broker_alive_[b] || lag_of(b) > replica_lag_max_) continue;
      if (best == kNone || applied(p, b) > applied(p, best)) best = b;
    }
    if (best == kNone && variant_ == Variant::unclean_election)
      for (int b = 0; b < kBrokers; ++b)
        if (broker_alive_[b] && (best == kNone || applied(p, b) > applied(p, best))) best = b;
    if (best == kNone) {
      ctx_.log("partition " + std::to_string(p) + " offline: no in-sync replica alive");
      return;
    }
    make_leader(p, best);
  }

  /// Broker b leads partition p; the log is cut to what b has: the records beyond are lost.
  void make_leader(int p, int b) {
    Partition& part = partitions_[p];
    const std::size_t keep = applied(p, b);
    std::int64_t lost = 0;
    for (std::size_t o = keep; o < part.log.size(); ++o) lost += part.log[o].acked;
    part.log.resize(keep);
    acked_lost_ += lost;
    lost_metric_.add(static_cast<double>(lost));
    part.leader = b;
    ++part.epoch;
    for (std::size_t& a : part.applied) a = std::min(a, keep);
    // Offsets past the new end no longer exist: the group starts again from the end.
    part.committed = std::min(part.committed, keep);
    if (part.position > keep) {
      part.position = keep;
      ++part.generation;
    }
    part.replay_until = std::min(part.replay_until, keep);
    changed_lag();
    update_replication_gauges();
    ctx_.log("broker " + std::to_string(b) + " leads partition " + std::to_string(p) + "; " +
             std::to_string(lost) + " acknowledged records lost");
    wake_owner(p);
  }

  void update_replication_gauges() {
    int offline = 0, under = 0;
    for (int p = 0; p < static_cast<int>(partitions_.size()); ++p) {
      if (partitions_[p].leader == kNone)
        ++offline;
      else if (insync_count(p) < kBrokers)
        ++under;
    }
    offline_metric_.set(offline);
    isr_metric_.set(under);
  }

  // ---- consumers ------------------------------------------------------------------------------

  void add_consumer() {
    const int c = static_cast<int>(consumers_.size());
    consumers_.emplace_back();
    consumers_.back().worker = std::make_unique<Server<std::uint64_t>>(
        ctx_, Server<std::uint64_t>::Options{.workers = 1, .queue_limit = 0},
        [this, c](std::uint64_t& j) { processed(c, j); });
  }

  void dispatch_all() {
    if (queue()) return dispatch_queue();
    for (int c = 0; c < static_cast<int>(consumers_.size()); ++c) poll(c);
  }

  /// Queue: every idle consumer takes the next message.
  void dispatch_queue() {
    for (Consumer& c : consumers_)
      if (c.alive && c.member && c.worker->alive() && c.worker->busy() == 0 && !queued_.empty()) {
        const std::size_t o = queued_.pop_front();
        c.worker->submit(job(0, o), partitions_[0].log[o].work);
      }
  }

  /// Log: an idle consumer fetches a batch from its next partition with records to read.
  void poll(int c) {
    Consumer& con = consumers_[c];
    if (!con.alive || !con.worker->alive() || con.worker->busy() > 0) return;
    if (con.batch_partition != kNone) return next_record(c);
    const std::size_t n = con.partitions.size();
    for (std::size_t i = 0; i < n; ++i) {
      const int p = con.partitions[(con.next_pick + i) % n];
      Partition& part = partitions_[p];
      if (part.draining || part.paused_until > ctx_.now() || part.leader == kNone) continue;
      const std::size_t hw = high_watermark(p);
      if (part.position >= hw) continue;
      con.next_pick = (con.next_pick + i + 1) % n;
      con.batch_partition = p;
      con.batch_end = std::min(hw, part.position + batch_);
      con.batch_generation = part.generation;
      if (commit_first()) commit(p, con.batch_end);  // before processing: at most once
      return next_record(c);
    }
  }

  void next_record(int c) {
    Consumer& con = consumers_[c];
    const int p = con.batch_partition;
    Partition& part = partitions_[p];
    if (part.generation != con.batch_generation) {  // taken away: a crash, a rewind, a truncation
      con.batch_partition = kNone;
      if (part.draining) hand_over(p);
      return poll(c);
    }
    if (part.position >= con.batch_end) {
      if (!commit_first()) commit(p, part.position);  // after processing: at least once
      con.batch_partition = kNone;
      if (part.draining) hand_over(p);
      return poll(c);
    }
    con.worker->submit(job(p, part.position), part.log[part.position].work);
  }

  /// A consumer finished processing a record: its effect is applied.
  void processed(int c, std::uint64_t j) {
    const int p = static_cast<int>(j >> 40);
    const std::size_t o = j & ((std::uint64_t{1} << 40) - 1);
    Partition& part = partitions_[p];
    if (o < part.log.size()) apply(part, o);
    if (queue()) {
      changed_lag();
      return dispatch_queue();
    }
    Consumer& con = consumers_[c];
    if (con.batch_partition == kNone) return poll(c);
    if (con.batch_partition == p && part.generation == con.batch_generation && part.position == o)
      ++part.position;
    next_record(c);
  }

  void apply(Partition& part, std::size_t o) {
    Record& r = part.log[o];
    if (r.processed > 0) {
      if (o < part.replay_until) {
        ++replayed_;
      } else {
        ++duplicates_;
        duplicates_metric_.add(1);
      }
    } else {
      ++consumed_;
      consumed_metric_.add(1);
      lag_.record(ctx_.now() - r.appended);
      std::uint32_t& seen = keys_[r.key].seen;
      if (r.seq + 1 < seen) {
        ++out_of_order_;
        disorder_metric_.add(1);
      }
      seen = std::max(seen, r.seq + 1);
    }
    if (r.processed < 255) ++r.processed;
  }

  void commit(int p, std::size_t offset) {
    Partition& part = partitions_[p];
    part.committed = std::min(std::max(part.committed, offset), part.log.size());
    changed_lag();
  }

  void wake_owner(int p) {
    if (partitions_[p].owner != kNone) poll(partitions_[p].owner);
  }

  /// The previous owner is done with the partition: the new one may start (after its pause).
  void hand_over(int p) {
    partitions_[p].draining = false;
    wake_owner(p);
  }

  void crash_consumer(int c) {
    Consumer& con = consumers_[c];
    if (!con.alive) return;
    con.alive = false;
    // The record it was processing is lost with it (its effect never happened).
    con.worker->kill([this](std::uint64_t& j) {
      if (queue()) queued_.push_back(j & ((std::uint64_t{1} << 40) - 1));  // redelivered
    });
    ctx_.log("consumer " + std::to_string(c) + " crashed");
    if (queue()) return dispatch_queue();
    if (con.batch_partition != kNone) {
      // Uncommitted progress is lost: the next owner starts from the committed offset.
      const int p = con.batch_partition;
      Partition& part = partitions_[p];
      part.position = part.committed;
      ++part.generation;
      con.batch_partition = kNone;
      if (part.draining) hand_over(p);
    }
    // The group notices when its session expires.
    ctx_.after(session_timeout_, [this, c] {
      if (consumers_[c].alive || !consumers_[c].member) return;
      consumers_[c].member = false;
      rebalance();
    });
  }

  void restart_consumer(int c) {
    Consumer& con = consumers_[c];
    if (con.alive) return;
    con.alive = true;
    con.worker->restart();
    if (queue()) return dispatch_queue();
    if (con.member) return poll(c);  // back before its session expired: nothing changed
    con.member = true;
    rebalance();
  }

  // ---- rebalancing ----------------------------------------------------------------------------

  /// Sticky assignment: each member keeps its partitions up to its quota (P / M, the first
  /// P % M members one more); the others go to the members below quota.
  void assign(Time pause) {
    std::vector<int> members;
    for (int c = 0; c < static_cast<int>(consumers_.size()); ++c)
      if (consumers_[c].member) members.push_back(c);
    const auto P = static_cast<int>(partitions_.size());
    std::vector<int> owner(P, kNone), quota(consumers_.size(), 0), load(consumers_.size(), 0);
    for (std::size_t i = 0; i < members.size(); ++i)
      quota[members[i]] = P / static_cast<int>(members.size()) +
                          (static_cast<int>(i) < P % static_cast<int>(members.size()));
    for (int p = 0; p < P; ++p) {
      const int o = partitions_[p].owner;
      if (o != kNone && consumers_[o].member && load[o] < quota[o]) owner[p] = o, ++load[o];
    }
    for (int p = 0; p < P; ++p) {
      if (owner[p] != kNone) continue;
      for (int c : members)
        if (load[c] < quota[c]) {
          owner[p] = c;
          ++load[c];
          break;
        }
    }
    for (Consumer& con : consumers_) con.partitions.clear();
    for (int p = 0; p < P; ++p) {
      Partition& part = partitions_[p];
      const int before = part.owner;
      const bool moved = owner[p] != before;
      // Eager: every partition stops for one round. Cooperative: only the ones that move, for
      // two rounds when their old owner must first give them up, one when it is gone.
      Time paused = 0;
      if (pause > 0 && eager()) paused = pause;
      if (pause > 0 && !eager() && moved)
        paused = before != kNone && consumers_[before].member ? 2 * pause : pause;
      if (moved || paused > 0) revoke(p);
      part.owner = owner[p];
      if (owner[p] != kNone) consumers_[owner[p]].partitions.push_back(p);
      if (paused > 0) {
        part.paused_until = ctx_.now() + paused;
        pause_ns_ += paused;
        pause_metric_.add(to_seconds(paused));
        const int p_copy = p;
        ctx_.after(paused, [this, p_copy] { wake_owner(p_copy); });
      }
    }
  }

  /// The partition's owner gives it up at its next poll: a batch in progress is finished and
  /// committed first (the partition is draining meanwhile), as onPartitionsRevoked runs inside
  /// poll().
  void revoke(int p) {
    Partition& part = partitions_[p];
    if (part.owner == kNone) return;
    const Consumer& con = consumers_[part.owner];
    if (con.alive && con.batch_partition == p) part.draining = true;
  }

  void rebalance() {
    ++rebalances_;
    assign(rebalance_time_);
    ctx_.log(std::string(eager() ? "eager" : "cooperative") +
             " rebalance: " + std::to_string(idle_consumers()) + " idle consumers");
    dispatch_all();
  }

  std::int64_t idle_consumers() const {
    if (queue()) return 0;  // competing consumers all take messages
    std::int64_t idle = 0;
    for (const Consumer& con : consumers_) idle += con.member && con.partitions.empty();
    return idle;
  }

  // ---- replay ---------------------------------------------------------------------------------

  /// Rewind the group to the first record appended at or after `from` (kafka-consumer-groups
  /// --reset-offsets --to-datetime): everything since is processed again. Records older than
  /// the retention are gone; a queue keeps nothing it delivered.
  void replay(Time from) {
    for (int p = 0; p < static_cast<int>(partitions_.size()); ++p) {
      Partition& part = partitions_[p];
      auto first_at = [&](Time t) {
        return static_cast<std::size_t>(
            std::partition_point(part.log.begin(), part.log.end(),
                                 [&](const Record& r) { return r.appended < t; }) -
            part.log.begin());
      };
      const std::size_t wanted = first_at(from);
      if (queue()) {  // consumed messages were deleted
        for (std::size_t o = wanted; o < part.log.size(); ++o)
          unrecoverable_ += part.log[o].processed > 0;
        continue;
      }
      const std::size_t start = std::max(wanted, first_at(ctx_.now() - retention_));
      for (std::size_t o = wanted; o < start; ++o) unrecoverable_ += part.log[o].processed > 0;
      part.replay_until = part.log.size();  // what is read again from here on is the replay
      part.committed = part.position = std::min(start, part.committed);
      ++part.generation;
    }
    changed_lag();
    dispatch_all();
  }

  // ---- bookkeeping ----------------------------------------------------------------------------

  /// Records not yet consumed (log: behind the committed offsets). The drain waits for them.
  std::int64_t lag_records() const {
    if (queue()) {
      std::int64_t held = 0;
      for (const Consumer& c : consumers_) held += c.worker->busy();
      return static_cast<std::int64_t>(queued_.size()) + held;
    }
    std::int64_t lag = 0;
    for (const Partition& part : partitions_)
      lag += static_cast<std::int64_t>(part.log.size() - std::min(part.committed, part.log.size()));
    return lag;
  }

  void changed_lag() {
    const std::int64_t lag = lag_records();
    lag_metric_.set(static_cast<double>(lag));
    if (lag > 0 && !holding_) ctx_.hold();
    if (lag == 0 && holding_) ctx_.release();
    holding_ = lag > 0;
  }

  Map status() {
    std::int64_t offline = 0, paused = 0;
    for (const Partition& part : partitions_) {
      offline += part.leader == kNone;
      paused += part.paused_until > ctx_.now();
    }
    std::int64_t members = 0;
    for (const Consumer& con : consumers_) members += con.member;
    return {{"lag", lag_records()},
            {"offline", offline},
            {"paused", paused},
            {"members", members},
            {"idle_consumers", idle_consumers()}};
  }

  Variant variant_;
  Context& ctx_;
  std::size_t batch_;
  Time hop_, replication_lag_, replica_lag_max_;
  int min_insync_;
  Time election_delay_, session_timeout_, rebalance_time_, retention_;
  Metric& produced_metric_;
  Metric& consumed_metric_;
  Metric& lost_metric_;
  Metric& duplicates_metric_;
  Metric& disorder_metric_;
  Metric& pause_metric_;
  Metric& lag_metric_;
  Metric& offline_metric_;
  Metric& isr_metric_;

  std::vector<Partition> partitions_;
  std::vector<Consumer> consumers_;
  std::array<bool, kBrokers> broker_alive_{true, true, true};
  std::array<double, kBrokers> slow_{};
  Fifo<std::size_t> queued_;  // in_memory_queue: offsets (in partition 0's log) not yet taken
  SlotPool<Produce> produces_;
  SlotPool<Request> acks_;  // acknowledgements on their way to the producer
  KeyIndex key_index_;      // workload key -> keys_ index
  std::vector<KeyOrder> keys_;
  std::uint64_t round_robin_ = 0;
  bool holding_ = false;
  Histogram lag_;  // append -> first processed
  std::int64_t produced_ = 0, consumed_ = 0, acked_lost_ = 0, duplicates_ = 0, out_of_order_ = 0,
               replayed_ = 0, unrecoverable_ = 0, rebalances_ = 0;
  Time pause_ns_ = 0, counted_from_ = 0;
};

LessonInfo info() {
  return {
      "kafka_log",
      "From an in-memory queue to a partitioned, replicated log: replay, per-key order, consumer "
      "groups, offset commits, acks",
      "A plain in-memory queue deletes what it delivered: after a consumer bug there is nothing "
      "to replay. Competing consumers process one key's messages in parallel, out of order, and "
      "a broker crash loses the whole queue. Half-way fixes fail too: round-robin partitioning "
      "reorders keys, committing offsets before processing loses records on a crash, acks=1 "
      "loses acknowledged writes when the leader dies, unclean leader election loses them even "
      "with acks=all, and eager rebalancing stops every partition at every membership change.",
      "Append records to partitions chosen by key and keep them for a retention period: a "
      "consumer group splits the partitions, reads each in offset order (per-key order), "
      "commits offsets after processing (at least once: a crash re-reads, never skips) and can "
      "rewind to any retained offset. Replicate every partition; acknowledge a write once the "
      "in-sync replicas have it (acks=all, min.insync.replicas=2) and elect only in-sync "
      "replicas. Rebalance cooperatively: only the partitions that move pause. Parallelism is "
      "capped at the partition count.",
      {"Apache Kafka (KIP-429 incremental cooperative rebalancing; acks, min.insync.replicas, "
       "unclean.leader.election.enable; auto.commit.interval.ms; kafka-consumer-groups "
       "--reset-offsets)",
       "Redpanda, Amazon MSK, Confluent Cloud; Apache Pulsar and AWS Kinesis (shards) share the "
       "partitioned-log model",
       "J. Kreps, N. Narkhede, J. Rao, \"Kafka: a Distributed Messaging System for Log "
       "Processing\" (NetDB 2011); J. Kreps, \"The Log\" (2013)",
       "RabbitMQ / SQS as the queue: competing consumers, messages deleted once acknowledged"},
      {{"in_memory_queue", true,
        "one in-memory queue, competing consumers, deleted on ack: no replay, no key order"},
       {"round_robin", true, "the log, but records spread round-robin: per-key order is lost"},
       {"commit_before", true, "the log, offsets committed at fetch: a crash skips records"},
       {"acks_1", true, "the log, acknowledged by the leader alone: a leader crash loses writes"},
       {"unclean_election", true,
        "the log with acks=all, but an out-of-sync replica may become leader"},
       {"eager_rebalance", true, "the log, every rebalance stops every partition"},
       {"partitioned_log", false,
        "key partitioning, commit after processing, acks=all + min.insync, clean election, "
        "cooperative rebalancing, replay"}},
      {{"partitions", ParamType::integer, 6, "partitions of the topic (not for the queue)", 1,
        4096},
       {"consumers", ParamType::integer, 3, "consumers in the group at the start", 1, 4096},
       {"batch", ParamType::integer, 10,
        "records a consumer fetches at once from a partition (max.poll.records)", 1, 1e6},
       {"hop", ParamType::duration, "1ms", "one-way delay of a produce acknowledgement", 0, 60},
       {"replication_lag", ParamType::duration, "20ms",
        "a follower applies a record this long after the leader appended it", 0, 3600},
       {"replica_lag_max", ParamType::duration, "1s",
        "a follower lagging more is out of the in-sync replicas (replica.lag.time.max.ms)", 0,
        3600},
       {"min_insync", ParamType::integer, 2,
        "acks=all: replicas that must be in sync to accept a write (min.insync.replicas)", 1, 3},
       {"election_delay", ParamType::duration, "2s",
        "time for the controller to notice a dead leader and elect another", 0, 3600},
       {"session_timeout", ParamType::duration, "3s",
        "time for the group to notice a crashed consumer (session.timeout.ms)", 0, 3600},
       {"rebalance_time", ParamType::duration, "1s", "one rebalance round (join + sync)", 0, 3600},
       {"retention", ParamType::duration, "1h", "how long the log keeps records", 1e-6, 1e9}},
      {{"crash_broker",
        "broker `broker` dies and comes back after `duration`: the partitions it leads are "
        "offline until a new leader is elected (the queue lives on broker 0 and is lost)",
        {{"broker", ParamType::integer, 0, "broker 0, 1 or 2", 0, kBrokers - 1},
         {"duration", ParamType::duration, "10s", "time until it restarts", 0, 1e7}}},
       {"slow_broker",
        "broker `broker` replicates `factor` times slower for `duration` (beyond "
        "replica_lag_max it leaves the in-sync replicas)",
        {{"broker", ParamType::integer, 2, "broker 0, 1 or 2", 0, kBrokers - 1},
         {"factor", ParamType::real, 100.0, "replication lag multiplier", 1e-3, 1e9},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"crash_consumer",
        "consumer `consumer` dies (its uncommitted progress with it) and restarts after "
        "`duration`; the group rebalances when its session expires and when it rejoins",
        {{"consumer", ParamType::integer, 0, "the consumer's number (0 = the first)", 0, 4095},
         {"duration", ParamType::duration, "5s", "time until it restarts", 0, 1e7}}}},
      {{"status",
        "now: lag (records not consumed yet), offline and paused partitions, members, "
        "idle_consumers",
        {}},
       {"add_consumer", "a new consumer joins the group (a rebalance); returns the status", {}},
       {"remove_consumer",
        "consumer `consumer` leaves the group cleanly (it finishes its batch; a rebalance)",
        {{"consumer", ParamType::integer, 0, "the consumer's number", 0, 4095}}},
       {"replay",
        "rewind the group to the records appended since `from` (a virtual time) and process "
        "them again",
        {{"from", ParamType::duration, 0.0, "the time to rewind to", 0, 1e9}}}},
      {{"records_produced", MetricSpec::Kind::counter, "records appended"},
       {"records_consumed", MetricSpec::Kind::counter, "records processed for the first time"},
       {"acked_lost", MetricSpec::Kind::counter, "acknowledged records lost"},
       {"duplicates", MetricSpec::Kind::counter, "records processed again (not by a replay)"},
       {"out_of_order", MetricSpec::Kind::counter,
        "records processed after a later record of the same key"},
       {"rebalance_pause_seconds", MetricSpec::Kind::counter,
        "partition-seconds without a consumer because of rebalances"},
       {"consumer_lag", MetricSpec::Kind::gauge,
        "records not consumed yet (log: behind the committed offsets)"},
       {"offline_partitions", MetricSpec::Kind::gauge, "partitions without a leader"},
       {"under_replicated_partitions", MetricSpec::Kind::gauge,
        "partitions with a replica out of sync"}},
      {{"produced", Unit::count, "records appended"},
       {"consumed", Unit::count, "records processed at least once"},
       {"acked_lost", Unit::count,
        "records acknowledged to the producer and then lost (truncated at an election, or in "
        "the queue's crash)"},
       {"duplicates", Unit::count, "records processed again after a crash (not by a replay)"},
       {"skipped", Unit::count, "records the group committed past without processing them"},
       {"out_of_order", Unit::count, "records processed after a later record of the same key"},
       {"replayed", Unit::count, "records processed again by a replay"},
       {"unrecoverable", Unit::count,
        "records a replay asked for that were consumed and are gone (queue, retention)"},
       {"lag_p99", Unit::seconds, "99th percentile of append -> first processed"},
       {"lag_max", Unit::seconds, "longest append -> first processed"},
       {"idle_consumers", Unit::count, "group members without a partition at the end"},
       {"rebalances", Unit::count, "rebalances of the group"},
       {"rebalance_pause", Unit::seconds,
        "partition-seconds paused by rebalances (eager: all partitions; cooperative: those "
        "that move)"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"in_memory_queue", Variant::in_memory_queue},
      {"round_robin", Variant::round_robin},
      {"commit_before", Variant::commit_before},
      {"acks_1", Variant::acks_1},
      {"unclean_election", Variant::unclean_election},
      {"eager_rebalance", Variant::eager_rebalance},
      {"partitioned_log", Variant::partitioned_log}};
  return std::make_unique<KafkaLog>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
