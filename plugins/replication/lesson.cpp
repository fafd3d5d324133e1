// Replication: one leader takes the writes, replicas copy its log and serve reads.
//
//   problem:  write(k)  -> leader appends to its log, acks at once; each replica applies the
//                          entry after a random lag (async replication)
//             read(k)   -> any replica: it may not have applied the client's own write yet
//                          (stale read), and two replicas may be at different points (a later
//                          read returns an older version: non-monotonic)
//             crash_leader -> after a detection delay the most up-to-date replica is promoted;
//                          acked writes it had not applied are gone (lost writes)
//   fixes:    read_your_writes: the client's session remembers the log position of its last
//                          write; a read goes to a replica that has applied it, else to the
//                          leader (a time window after the write fails when a lag exceeds it)
//             monotonic_reads: a client always reads from the same replica (hash of client)
//             semi_sync: ack a write once one replica has applied it (costs the fastest lag)
//             sync:      ack a write once every replica has applied it (costs the slowest lag)
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/fifo.hpp"
#include "hldlab/lognormal_durations.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Mode { async_replica_reads, read_your_writes, monotonic_reads, semi_sync, sync };

/// One entry of the leader's replication log.
struct Entry {
  std::uint64_t key = 0;
  std::uint64_t write_id = 0;  // unique, increasing: the version a read returns
  bool acked = false;
};

/// A node: the leader has applied the whole log; a replica a prefix of it.
struct Node {
  std::size_t applied = 0;  // log entries applied
  Time last_apply = 0;      // time the last scheduled entry is applied (in-order apply)
  Time lag = 0;             // current replication lag
  Time lag_until = 0;       // when the lag is drawn again
  Fifo<EventId> applying;   // entries shipped, not applied yet, in log order
};

/// What we remember per (client, key): the client's last acked write, the last version seen.
struct Session {
  std::uint64_t own_write = 0;
  std::uint64_t seen = 0;
};

/// A write waiting for its ack, or a read in service.
struct InFlight {
  Request request;
  std::size_t position = 0;  // write: its log position
  EventId done;
  std::uint32_t recorded = History::kNone;  // its operation in the history, when recording
  std::int64_t read_value = 0;              // recording: the version a read returns
};

class Replicated final : public System {
 public:
  Replicated(Mode mode, const Params& p, Context& ctx)
      : mode_(mode),
        ctx_(ctx),
        failover_after_(p.duration("failover_after")),
        lag_period_(p.duration("lag_period")),
        leader_reads_only_(p.string("read_from") == "leader"),
        stale_metric_(ctx.metric("stale_reads")),
        lost_metric_(ctx.metric("lost_writes")),
        recording_(ctx.history()) {
    lag_ = lognormal_durations(p, "lag");
    nodes_.resize(p.integer<std::size_t>("replicas") + 1);
  }

  void handle(const Request& r) override {
    if (r.op == Op::write) return write(r);
    read(r);
  }

  void inject(const std::string& fault, const Value&) override {
    if (fault != "crash_leader") return;
    if (leader_down_) return;  // already failing over
    leader_down_ = true;
    if (ctx_.tracing()) ctx_.trace_event(static_cast<int>(leader_), "leader crash");
    // Replication in flight dies with the leader: replicas keep what they applied.
    for (Node& n : nodes_) stop_applying(n);
    // Writes waiting for replica acks fail: the client never got an ack, so they are not lost.
    in_flight_.for_each([this](SlotHandle h, InFlight& w) {
      if (w.request.op != Op::write) return;
      ctx_.cancel(w.done);
      // The write is in the leader's log and maybe on a replica: it may survive the failover.
      if (recording_) recording_->complete(w.recorded, HistoryOutcome::info, ctx_.now());
      ctx_.complete(w.request, Outcome::error);
      in_flight_.release(h);
    });
    ctx_.log("leader crashed; failover in " + std::to_string(to_seconds(failover_after_)) + "s");
    ctx_.after(failover_after_, [this] { failover(); });
  }

  Map figures() const override {
    return {{"stale_reads", stale_reads_},
            {"non_monotonic", non_monotonic_},
            {"lost_writes", lost_writes_},
            {"write_ms", writes_acked_ ? to_milliseconds(write_latency_sum_) / writes_acked_ : 0.0},
            {"leader_reads", leader_reads_}};
  }

  void reset_stats() override {
    stale_reads_ = non_monotonic_ = lost_writes_ = leader_reads_ = writes_acked_ = 0;
    write_latency_sum_ = 0;
  }

 private:
  /// The replica's current lag: a lognormal draw, held for lag_period (lag moves with load on
  /// the replica, it is not independent per write).
  Time lag(Node& n) {
    if (ctx_.now() >= n.lag_until) {
      n.lag_until = ctx_.now() + lag_period_;
      n.lag = lag_.sample_time(ctx_.rng());
    }
    return n.lag;
  }

  /// Version of `key` on a node that applied the first `applied` log entries (0: never written).
  std::uint64_t version_at(std::uint64_t key, std::size_t applied) const {
    auto it = history_.find(key);
    if (it == history_.end()) return 0;
    const std::vector<std::size_t>& positions = it->second;
    auto upper = std::lower_bound(positions.begin(), positions.end(), applied);
    if (upper == positions.begin()) return 0;
    return log_[*(upper - 1)].write_id;
  }

  void write(const Request& r) {
    if (leader_down_) return ctx_.complete(r, Outcome::error);  // nobody takes writes
    const std::size_t position = log_.size();
    log_.push_back({r.key, ++next_write_id_, false});
    history_[r.key].push_back(position);
    nodes_[leader_].applied = log_.size();
    last_write_[r.client] = log_.size();
    // Ship to every replica: it applies entries in log order, each after its own lag.
    Time fastest = -1, slowest = 0;
    for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
      if (i == leader_) continue;
      const Time delay = ship(i) - ctx_.now();
      fastest = fastest < 0 ? delay : std::min(fastest, delay);
      slowest = std::max(slowest, delay);
    }
    Time wait = r.service;  // the leader's own commit
    if (mode_ == Mode::semi_sync) wait = std::max(wait, fastest);
    if (mode_ == Mode::sync) wait = std::max(wait, slowest);
    const SlotHandle h = in_flight_.acquire();
    in_flight_[h] = {r, position, ctx_.after(wait, [this, h] { ack(h); })};
    if (recording_)
      in_flight_[h].recorded =
          recording_->invoke(r.client, HistoryKind::write, r.key,
                             static_cast<std::int64_t>(next_write_id_), r.arrival);
  }

  /// Schedule the next log entry on replica `i`; returns the time it will be applied.
  Time ship(std::uint32_t i) {
    Node& n = nodes_[i];
    n.last_apply = std::max(n.last_apply, ctx_.now() + lag(n));
    const auto from = static_cast<std::uint32_t>(leader_);
    const Time sent = ctx_.now();
    n.applying.push_back(ctx_.after(n.last_apply - ctx_.now(), [this, i, from, sent] {
      if (ctx_.tracing())  // the space-time diagram (sys:trace{...})
        ctx_.trace_message(static_cast<int>(from), static_cast<int>(i), sent,
                           "entry #" + std::to_string(nodes_[i].applied + 1));
      ++nodes_[i].applied;
      nodes_[i].applying.pop_front();
    }));
    return n.last_apply;
  }

  /// Cancel the entries shipped to `n` and not applied yet.
  void stop_applying(Node& n) {
    while (!n.applying.empty()) ctx_.cancel(n.applying.pop_front());
    n.last_apply = ctx_.now();
  }

  void ack(SlotHandle h) {
    const InFlight& w = in_flight_[h];
    log_[w.position].acked = true;
    Session& s = sessions_[session_key(w.request.client, w.request.key)];
    s.own_write = std::max(s.own_write, log_[w.position].write_id);
    ++writes_acked_;
    write_latency_sum_ += ctx_.now() - w.request.arrival;
    if (recording_) recording_->complete(w.recorded, HistoryOutcome::ok, ctx_.now());
    ctx_.complete(w.request, Outcome::ok);
    in_flight_.release(h);
  }

  void read(const Request& r) {
    const std::uint32_t node = pick_node(r);
    if (node == leader_) {
      if (leader_down_) return ctx_.complete(r, Outcome::error);
      ++leader_reads_;
    }
    const std::uint64_t version =
        version_at(r.key, leader_reads_only_ ? committed() : nodes_[node].applied);
    auto it = sessions_.find(session_key(r.client, r.key));
    if (it != sessions_.end()) {
      Session& s = it->second;
      if (version < s.own_write) {
        if (ctx_.tracing()) ctx_.trace_event(static_cast<int>(node), "stale read");
        ++stale_reads_;
        stale_metric_.add(1);
      }
      if (version < s.seen) ++non_monotonic_;
      s.seen = std::max(s.seen, version);
    } else if (version > 0) {
      sessions_[session_key(r.client, r.key)].seen = version;
    }
    const SlotHandle h = in_flight_.acquire();
    in_flight_[h] = {r, 0, ctx_.after(r.service, [this, h] {
                       if (recording_)
                         recording_->complete(in_flight_[h].recorded, HistoryOutcome::ok,
                                              ctx_.now(), in_flight_[h].read_value);
                       ctx_.complete(in_flight_[h].request, Outcome::ok);
                       in_flight_.release(h);
                     })};
    if (recording_) {  // the read returns the version it found now
      in_flight_[h].recorded = recording_->invoke(r.client, HistoryKind::read, r.key, 0, r.arrival);
      in_flight_[h].read_value =
          version == 0 ? History::kNoValue : static_cast<std::int64_t>(version);
    }
  }

  /// Log entries committed, as this variant acknowledges writes: all of the leader's log
  /// (async, read_your_writes, monotonic_reads), what the most advanced replica applied
  /// (semi_sync), what every replica applied (sync). Replicas apply in log order.
  std::size_t committed() const {
    std::size_t most = 0, least = log_.size();
    for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
      if (i == leader_) continue;
      most = std::max(most, nodes_[i].applied);
      least = std::min(least, nodes_[i].applied);
    }
    if (mode_ == Mode::semi_sync) return std::min(most, log_.size());
    if (mode_ == Mode::sync) return least;
    return log_.size();
  }

  std::uint32_t pick_node(const Request& r) {
    const auto replicas = static_cast<std::uint32_t>(nodes_.size() - 1);
    if (replicas == 0 || leader_reads_only_) return leader_;
    const auto index = static_cast<std::uint32_t>(  // among the replicas, 0..replicas-1
        mode_ == Mode::monotonic_reads ? Rng::hash(r.client) % replicas
                                       : ctx_.rng().below(replicas));
    const std::uint32_t node = index >= leader_ ? index + 1 : index;  // skip the leader
    if (mode_ == Mode::read_your_writes) {
      // A failover may have cut the log below the client's last write: what is left counts.
      auto it = last_write_.find(r.client);
      if (it != last_write_.end() && nodes_[node].applied < std::min(it->second, log_.size()))
        return leader_;
    }
    return node;
  }

  void failover() {
    // Promote the replica that applied the most; the old leader comes back as its replica.
    std::uint32_t best = leader_ == 0 ? 1 : 0;
    for (std::uint32_t i = 0; i < nodes_.size(); ++i)
      if (i != leader_ && nodes_[i].applied > nodes_[best].applied) best = i;
    const std::size_t keep = nodes_[best].applied;
    std::int64_t lost = 0;
    while (log_.size() > keep) {
      const Entry& e = log_.back();
      if (e.acked) ++lost;
      history_[e.key].pop_back();
      log_.pop_back();
    }
    lost_writes_ += lost;
    lost_metric_.add(static_cast<double>(lost));
    const std::uint32_t old = leader_;
    leader_ = best;
    leader_down_ = false;
    nodes_[old].applied = keep;  // resynced from the new leader
    // Other replicas catch up from where they are (none is ahead of the new leader).
    for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
      if (i == leader_) continue;
      stop_applying(nodes_[i]);
      for (std::size_t k = nodes_[i].applied; k < log_.size(); ++k) ship(i);
    }
    if (ctx_.tracing())
      ctx_.trace_event(static_cast<int>(best), "promoted, " + std::to_string(lost) + " lost");
    ctx_.log("replica " + std::to_string(best) + " promoted to leader; " + std::to_string(lost) +
             " acknowledged writes lost");
  }

  using SessionKey = std::pair<std::uint32_t, std::uint64_t>;  // (client, key)
  struct SessionHash {
    std::size_t operator()(const SessionKey& k) const {
      return Rng::hash(k.second ^ (static_cast<std::uint64_t>(k.first) << 40 | k.first));
    }
  };
  static SessionKey session_key(std::uint32_t client, std::uint64_t key) { return {client, key}; }

  Mode mode_;
  Context& ctx_;
  Time failover_after_, lag_period_;
  bool leader_reads_only_;  // read_from = "leader": reads see the committed entries
  Distribution lag_;
  Metric& stale_metric_;
  Metric& lost_metric_;
  History* recording_;  // the history for the checkers: null unless a script records one
  std::vector<Node> nodes_;
  std::uint32_t leader_ = 0;
  bool leader_down_ = false;
  std::vector<Entry> log_;
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> history_;  // key -> log positions
  std::unordered_map<SessionKey, Session, SessionHash> sessions_;
  std::unordered_map<std::uint32_t, std::size_t> last_write_;  // client -> log length after its
                                                               // last write
  SlotPool<InFlight> in_flight_;
  std::uint64_t next_write_id_ = 0;
  std::int64_t stale_reads_ = 0, non_monotonic_ = 0, lost_writes_ = 0, leader_reads_ = 0;
  std::int64_t writes_acked_ = 0;
  Time write_latency_sum_ = 0;
};

LessonInfo info() {
  return {
      "replication",
      "Replication: a leader, async replicas, and what reading from them costs",
      "A single leader acks writes at once and ships them to replicas asynchronously. Reads "
      "spread over the replicas return versions older than the client's own acked write "
      "(read-your-writes broken) and can go back in time between two replicas (non-monotonic "
      "reads). When the leader crashes, the promoted replica lacks the writes it had not "
      "applied: acknowledged writes are lost.",
      "Send a client's read to a replica only once it has applied the client's last write, else to "
      "the leader (read-your-writes); "
      "pin a client to one replica (monotonic reads); or wait for replicas before acking: "
      "semi-synchronous (one replica) loses no acked write at failover, synchronous (all) "
      "also gives read-your-writes on every replica; both pay replica lag on every write.",
      {"MySQL async / semi-sync replication (rpl_semi_sync_source_wait_for_replica_count)",
       "PostgreSQL streaming replication (synchronous_commit, synchronous_standby_names)",
       "MongoDB read preference and causal consistency sessions",
       "Amazon Aurora / RDS read replicas, ProxySQL read/write split"},
      {{"async_replica_reads", true, "async replication, reads from any replica"},
       {"read_your_writes", false,
        "a read goes to the leader unless its replica applied the client's last write"},
       {"monotonic_reads", false, "a client always reads from the same replica"},
       {"semi_sync", false, "ack a write once one replica applied it"},
       {"sync", false, "ack a write once every replica applied it"}},
      {{"replicas", ParamType::integer, 2, "replicas besides the leader", 1, 64},
       {"lag_median", ParamType::duration, "50ms", "median replication lag (lognormal)", 0, 3600},
       {"lag_p99", ParamType::duration, "500ms", "99th percentile of the replication lag", 0, 3600},
       {"lag_period", ParamType::duration, "1s",
        "a replica keeps one lag draw this long, then draws again", 1e-6, 3600},
       {"failover_after", ParamType::duration, "2s",
        "time to detect a dead leader and promote a replica (writes fail meanwhile)", 0, 3600},
       {"read_from",
        ParamType::string,
        "replicas",
        "where reads go: the replicas (as each variant picks them), or the leader, which "
        "answers from the committed entries only (acknowledged as the variant acknowledges "
        "writes)",
        -1e300,
        1e300,
        {"replicas", "leader"}}},
      {{"crash_leader",
        "the leader dies: in-flight replication is lost, writes fail until the most up-to-date "
        "replica is promoted after failover_after; acked writes it lacks are lost",
        {}}},
      {},
      {{"stale_reads", MetricSpec::Kind::counter, "reads older than the client's own acked write"},
       {"lost_writes", MetricSpec::Kind::counter, "acknowledged writes lost at failover"}},
      {{"stale_reads", Unit::count, "reads older than the client's own acked write"},
       {"non_monotonic", Unit::count, "reads older than a version the client already read"},
       {"lost_writes", Unit::count, "acknowledged writes lost at failover"},
       {"write_ms", Unit::number, "mean time to acknowledge a write, in milliseconds"},
       {"leader_reads", Unit::count, "reads served by the leader"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Mode> modes[] = {
      {"async_replica_reads", Mode::async_replica_reads},
      {"read_your_writes", Mode::read_your_writes},
      {"monotonic_reads", Mode::monotonic_reads},
      {"semi_sync", Mode::semi_sync},
      {"sync", Mode::sync}};
  return std::make_unique<Replicated>(variant_value(variant, modes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
