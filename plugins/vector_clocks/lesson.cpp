// Vector clocks: detecting concurrent writes instead of silently dropping one.
//
// N replicas each accept writes (client -> replica client % N) and replicate every write to
// the others after a network delay. A write is a read-modify-write: the client reads what its
// replica holds and writes a new value based on it.
//
//   problem:  last_write_wins: every value carries a physical timestamp; a replica keeps the
//               value with the highest one. Two concurrent writes (neither saw the other):
//               one is silently thrown away. With a skewed clock even a later write can lose
//               to an earlier one.
//   fix:      vector_clocks: every value carries a vector clock vc[replica] = counter.
//               receive(v): if some held sibling s has v.vc <= s.vc: v is old news, drop it
//                           else drop the siblings s with s.vc <= v.vc and keep v beside the rest
//               concurrent values survive as siblings; a read shows them all and the next
//               write (read-modify-write) merges them: vc = max(siblings) + 1 at this replica.
//
// Ground truth, the same for both variants: every write records the values it was built on (its
// parents). A write is lost when no value held by a replica or still in flight is built on it,
// directly or through its descendants: its effect is gone everywhere. Counted at the end by a
// walk of that graph from the surviving values.
#include <algorithm>
#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

constexpr std::size_t kMaxReplicas = 8;
using Clock = std::array<std::uint32_t, kMaxReplicas>;

/// a <= b: every write `a` was built on, `b` was built on too.
bool covered(const Clock& a, const Clock& b) {
  for (std::size_t i = 0; i < kMaxReplicas; ++i)
    if (a[i] > b[i]) return false;
  return true;
}

struct Version {
  Clock vc{};
  std::uint64_t update = 0;  // which write produced it (0, 1, 2, ...)
  Time ts = 0;               // the writing replica's physical clock (last write wins)
  std::uint32_t origin = 0;
};

/// Last write wins order: timestamp, then replica id, then update id as tie-breakers.
bool newer(const Version& a, const Version& b) {
  if (a.ts != b.ts) return a.ts > b.ts;
  if (a.origin != b.origin) return a.origin > b.origin;
  return a.update > b.update;
}

/// Replication of a write to one replica, in flight or held by a partition.
struct Message {
  Version version;
  std::uint64_t key = 0;
  std::uint32_t from = 0, to = 0;
  Time sent = 0;  // for the space-time diagram (sys:trace{...})
};

class Store final : public System {
 public:
  Store(bool vector_clocks, const Params& p, Context& ctx)
      : vc_(vector_clocks),
        ctx_(ctx),
        replicas_(p.integer<std::size_t>("replicas")),
        delay_(p.duration("replication_delay")),
        discards_metric_(ctx.metric("unseen_discards")),
        conflicts_metric_(ctx.metric("conflicts_detected")),
        data_(replicas_),
        behind_(replicas_, 0),
        isolated_(replicas_, false),
        counter_(replicas_, 0) {}

  void handle(const Request& r) override {
    const std::uint32_t replica = r.client % static_cast<std::uint32_t>(replicas_);
    if (r.op == Op::write) {
      write(replica, r.key);
    } else {
      auto it = data_[replica].find(r.key);
      if (it != data_[replica].end() && it->second.size() > 1) ++sibling_reads_;
    }
    ctx_.complete(r, Outcome::ok);
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "heal") {
      if (ctx_.tracing())
        for (std::size_t i = 0; i < replicas_; ++i)
          if (isolated_[i]) ctx_.trace_event(static_cast<int>(i), "healed");
      std::fill(isolated_.begin(), isolated_.end(), false);
      std::vector<SlotHandle> held;
      held.swap(held_);
      ctx_.log("partition healed: delivering " + std::to_string(held.size()) + " held messages");
      for (const SlotHandle h : held) deliver(h);
      return;
    }
    const std::size_t replica = replica_at(p["replica"].as_int());
    if (fault == "clock_skew") {
      behind_[replica] = p["behind"].as_int();
    } else if (fault == "partition") {
      isolated_[replica] = true;
      if (ctx_.tracing()) ctx_.trace_event(static_cast<int>(replica), "partitioned off");
      ctx_.log("replica " + std::to_string(replica) + " cut off from the others");
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "divergent_keys") {
      // Keys whose replicas do not hold the same set of values (0 once everything arrived).
      std::vector<std::uint64_t> keys;
      for (const auto& replica : data_)
        for (const auto& entry : replica) keys.push_back(entry.first);
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      return static_cast<std::int64_t>(std::count_if(keys.begin(), keys.end(), [&](auto key) {
        for (std::size_t q = 1; q < replicas_; ++q)
          if (updates(q, key) != updates(0, key)) return true;
        return false;
      }));
    }
    const std::size_t replica = replica_at(args["replica"].as_int());
    const auto key = static_cast<std::uint64_t>(args["key"].as_int());
    if (op == "write")
      return static_cast<std::int64_t>(write(static_cast<std::uint32_t>(replica), key));
    if (op == "read") {
      List out;
      for (std::uint64_t u : updates(replica, key)) out.push_back(static_cast<std::int64_t>(u));
      return out;
    }
    throw std::invalid_argument("unknown operation '" + op + "'");
  }

  Map figures() const override {
    return {{"writes", static_cast<std::int64_t>(flags_.size() - first_counted_)},
            {"lost_updates", lost_updates()},
            {"conflicts_detected", conflicts_},
            {"sibling_reads", sibling_reads_},
            {"merges", merges_},
            {"max_siblings", max_siblings_}};
  }

  void reset_stats() override {
    first_counted_ = flags_.size();
    conflicts_ = sibling_reads_ = merges_ = 0;
    max_siblings_ = 1;
  }

 private:
  /// Writes (since the warm-up) whose effect survives nowhere: not reachable through the parent
  /// links from any value a replica holds or a message carries.
  std::int64_t lost_updates() const {
    std::vector<std::uint8_t> alive(flags_.size(), 0);
    std::vector<std::uint64_t> stack;
    for (const auto& replica : data_)
      for (const auto& entry : replica)
        for (const Version& v : entry.second) stack.push_back(v.update);
    messages_.for_each([&](SlotHandle, const Message& m) { stack.push_back(m.version.update); });
    std::int64_t reached = 0;
    while (!stack.empty()) {
      const std::uint64_t u = stack.back();
      stack.pop_back();
      if (alive[u]) continue;
      alive[u] = 1;
      if (u >= first_counted_) ++reached;
      const std::size_t end = u + 1 < parent_begin_.size() ? parent_begin_[u + 1] : parents_.size();
      for (std::size_t i = parent_begin_[u]; i < end; ++i) stack.push_back(parents_[i]);
    }
    return static_cast<std::int64_t>(flags_.size() - first_counted_) - reached;
  }

  std::size_t replica_at(std::int64_t index) const {
    if (index < 0 || index >= static_cast<std::int64_t>(replicas_))
      throw std::invalid_argument("replica " + std::to_string(index) + " does not exist (0.." +
                                  std::to_string(replicas_ - 1) + ")");
    return static_cast<std::size_t>(index);
  }

  /// The update ids a replica holds for a key, sorted.
  std::vector<std::uint64_t> updates(std::size_t replica, std::uint64_t key) const {
    std::vector<std::uint64_t> ids;
    auto it = data_[replica].find(key);
    if (it != data_[replica].end())
      for (const Version& v : it->second) ids.push_back(v.update);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  /// A client's read-modify-write at `replica`: the new value is built on everything it read.
  std::uint64_t write(std::uint32_t replica, std::uint64_t key) {
    std::vector<Version>& held = data_[replica][key];
    Version v;
    for (const Version& s : held)
      for (std::size_t i = 0; i < kMaxReplicas; ++i) v.vc[i] = std::max(v.vc[i], s.vc[i]);
    v.vc[replica] = ++counter_[replica];
    v.update = flags_.size();
    parent_begin_.push_back(parents_.size());
    for (const Version& s : held) parents_.push_back(s.update);
    v.ts = ctx_.now() - behind_[replica];
    v.origin = replica;
    flags_.push_back(0);
    if (vc_) {
      if (held.size() > 1) ++merges_;
      held.clear();  // all covered by v
      held.push_back(v);
    } else {
      apply_lww(held, v);
    }
    for (std::uint32_t to = 0; to < replicas_; ++to) {
      if (to == replica) continue;
      const SlotHandle h = messages_.acquire();
      messages_[h] = {v, key, replica, to, ctx_.now()};
      ctx_.after(delay_, [this, h] { deliver(h); });
    }
    return v.update;
  }

  void deliver(SlotHandle h) {
    const Message& m = messages_[h];
    if (isolated_[m.from] || isolated_[m.to]) {
      if (ctx_.tracing()) trace(m, " (dropped until the heal)");
      return held_.push_back(h);  // until heal
    }
    if (ctx_.tracing()) trace(m, "");
    std::vector<Version>& held = data_[m.to][m.key];
    if (vc_)
      apply_vc(held, m.version);
    else
      apply_lww(held, m.version);
    messages_.release(h);
  }

  void trace(const Message& m, const char* note) {
    ctx_.trace_message(
        static_cast<int>(m.from), static_cast<int>(m.to), m.sent,
        "key " + std::to_string(m.key) + " update " + std::to_string(m.version.update) + note);
  }

  void apply_lww(std::vector<Version>& held, const Version& v) {
    if (held.empty()) return held.push_back(v);
    if (newer(v, held[0])) {
      drop(held[0], v);
      held[0] = v;
    } else {
      drop(v, held[0]);
    }
  }

  void apply_vc(std::vector<Version>& held, const Version& v) {
    for (const Version& s : held)
      if (covered(v.vc, s.vc)) return drop(v, s);  // old news
    std::size_t kept = 0;
    for (std::size_t i = 0; i < held.size(); ++i) {
      if (covered(held[i].vc, v.vc))
        drop(held[i], v);
      else
        held[kept++] = held[i];
    }
    held.resize(kept);
    held.push_back(v);
    if (held.size() > 1) {
      for (const Version& s : held) mark_conflict(s.update);
      max_siblings_ = std::max(max_siblings_, static_cast<std::int64_t>(held.size()));
    }
  }

  /// `loser` is discarded in favour of `winner` (the live signal of a likely lost update when
  /// winner's clock does not cover it; the exact count is lost_updates()).
  void drop(const Version& loser, const Version& winner) {
    if (!covered(loser.vc, winner.vc)) discards_metric_.add(1);
  }

  void mark_conflict(std::uint64_t update) {
    if (flags_[update]) return;
    flags_[update] = 1;
    ++conflicts_;
    conflicts_metric_.add(1);
  }

  bool vc_;
  Context& ctx_;
  std::size_t replicas_;
  Time delay_;
  Metric& discards_metric_;
  Metric& conflicts_metric_;
  std::vector<std::unordered_map<std::uint64_t, std::vector<Version>>> data_;
  std::vector<Time> behind_;
  std::vector<bool> isolated_;
  std::vector<std::uint32_t> counter_;
  std::vector<std::uint8_t> flags_;  // per write: 1 once it has been kept as a sibling
  std::vector<std::uint64_t> parent_begin_, parents_;  // per write: the writes it was built on
  // Mutable only because SlotPool::for_each is not const (lost_updates reads the messages).
  mutable SlotPool<Message> messages_;
  std::vector<SlotHandle> held_;   // messages held by a partition
  std::size_t first_counted_ = 0;  // writes before it happened during the warm-up
  std::int64_t conflicts_ = 0, sibling_reads_ = 0, merges_ = 0, max_siblings_ = 1;
};

LessonInfo info() {
  return {"vector_clocks",
          "Vector clocks: detect concurrent writes instead of dropping one",
          "Replicas that all accept writes resolve conflicts by last write wins: the value with "
          "the highest physical timestamp survives. Two clients updating the same key on two "
          "replicas at about the same time (neither saw the other) lose one update silently, and "
          "a replica whose clock is behind loses even writes that came later.",
          "Attach a vector clock (a counter per replica) to every value. A replica keeps a value "
          "unless another value's clock covers it, so concurrent values survive side by side as "
          "siblings. Reads return all siblings; the client's next write merges them and carries a "
          "clock that covers them all.",
          {"Amazon Dynamo (vector clocks, siblings)", "Riak (dotted version vectors)", "Voldemort",
           "Cassandra (last write wins by timestamp)"},
          {{"last_write_wins", true, "keep the value with the highest physical timestamp"},
           {"vector_clocks", false, "keep concurrent values as siblings; writes merge them"}},
          {{"replicas", ParamType::integer, 2, "replicas accepting writes (client % replicas)", 2,
            static_cast<double>(kMaxReplicas)},
           {"replication_delay", ParamType::duration, "50ms",
            "time for a write to reach the other replicas", 0, 3600}},
          {{"clock_skew",
            "a replica's physical clock runs behind (last write wins timestamps)",
            {{"replica", ParamType::integer, 1, "replica index", 0, kMaxReplicas - 1},
             {"behind", ParamType::duration, "500ms", "how far behind", 0, 3600}}},
           {"partition",
            "cut a replica off: replication to and from it is held until heal",
            {{"replica", ParamType::integer, 0, "replica index", 0, kMaxReplicas - 1}}},
           {"heal", "end every partition and deliver the held replication messages", {}}},
          {{"write",
            "a read-modify-write of `key` at `replica`; returns the update id",
            {{"replica", ParamType::integer, Value(), "replica index", 0, kMaxReplicas - 1},
             {"key", ParamType::integer, Value(), "key", 0, 9e18}}},
           {"read",
            "the update ids `replica` holds for `key` (more than one: siblings)",
            {{"replica", ParamType::integer, Value(), "replica index", 0, kMaxReplicas - 1},
             {"key", ParamType::integer, Value(), "key", 0, 9e18}}},
           {"divergent_keys", "keys whose replicas hold different values", {}}},
          {{"unseen_discards", MetricSpec::Kind::counter,
            "values discarded in favour of a value whose clock does not cover them"},
           {"conflicts_detected", MetricSpec::Kind::counter,
            "writes kept as a sibling of a concurrent write"}},
          {{"writes", Unit::count, "client writes (read-modify-writes)"},
           {"lost_updates", Unit::count,
            "writes whose effect survives nowhere (no held or travelling value is built on them)"},
           {"conflicts_detected", Unit::count, "writes kept as a sibling of a concurrent write"},
           {"sibling_reads", Unit::count, "reads that returned more than one value"},
           {"merges", Unit::count, "writes that merged siblings"},
           {"max_siblings", Unit::count, "most values held side by side for one key"}},
          /*uses_service_time=*/false};  // a replica answers at once; only replication takes time
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  return std::make_unique<Store>(variant == "vector_clocks", params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
