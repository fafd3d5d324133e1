// Consistent hashing: which node owns a key, and what moves when the set of nodes changes?
//
//   problem:  owner(key) = nodes[hash(key) % n]
//             n -> n+1 changes hash % n for n/(n+1) of all keys (~91% for 10 -> 11): every
//             cache misses at once, every shard reshuffles its data.
//   fix:      ring(key)        -> first node point clockwise from hash(key); with v virtual
//                                 points per node the load evens out (CV ~ 1/sqrt(v))
//             jump(key)        -> Lamping & Veach: O(ln n), no memory, buckets numbered 0..n-1
//             rendezvous(key)  -> argmax over nodes of hash(key, node): O(n), perfectly minimal
//             maglev(key)      -> table[hash(key) % M], M prime, filled by per-node permutations
//             bounded(key)     -> ring walk skipping nodes above (1 + eps) * average load
//             Adding a node moves ~1/(n+1) of the keys, all of them to the new node; removing
//             one moves only the keys it owned.
//   serving:  each request is routed to owner(request.key) and waits in that node's queue, so a
//             node owning too many (or too hot) keys shows up in P99.
//   measured: over a fixed sample of keys, the fraction moved by add_node / remove_node / kill,
//             the keys per node (max/mean and coefficient of variation), lookup steps.
//   seed:     the keys' hashes and the nodes' placement identities (ring points, Maglev
//             permutations, rendezvous scores) are salted from the lesson's random stream:
//             every seed is another placement, the same for every variant.
#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "hldlab/placement.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;
using placement::NodeId;

enum class Algorithm { mod_n, ring, ring_vnodes, jump, rendezvous, maglev, bounded_load };

constexpr std::int64_t kNoBucket = -1;

struct Node {
  Node(Context& ctx, int workers, Server<Request>::Done done)
      : server(ctx, {.workers = workers}, std::move(done)) {}
  Server<Request> server;
  bool member = true;            // in the placement (receives new keys)
  std::int64_t served = 0;       // since the last reset_stats
  std::int64_t sample_keys = 0;  // keys of the sample it owns
};

/// What one membership change did to the key sample.
struct ChangeStats {
  std::int64_t moved = 0;        // keys whose owner changed
  std::int64_t moved_other = 0;  // of those, keys moved between two nodes that did not change
  double key_max_mean = 0, key_cv = 0, lookup_steps = 0;
};

class Hashing final : public System {
 public:
  Hashing(Algorithm algorithm, const Params& p, Context& ctx)
      : algorithm_(algorithm),
        ctx_(ctx),
        vnodes_(algorithm == Algorithm::ring ? 1u : p.integer<std::uint32_t>("vnodes")),
        maglev_size_(p.integer<std::uint64_t>("maglev_table")),
        load_factor_(p.real("load_factor")),
        workers_(p.integer<int>("workers")),
        key_salt_(ctx.rng().next()),
        node_salt_(ctx.rng().next()),
        nodes_metric_(ctx.metric("nodes")),
        moved_metric_(ctx.metric("keys_moved")) {
    if (algorithm_ == Algorithm::maglev && !placement::is_prime(maglev_size_))
      throw std::invalid_argument("maglev_table must be prime, got " +
                                  std::to_string(maglev_size_));
    const auto n = p.integer("nodes");
    if (algorithm_ == Algorithm::maglev && static_cast<std::uint64_t>(n) > maglev_size_)
      throw std::invalid_argument("maglev_table must be at least the number of nodes");
    sample_.resize(p.integer<std::size_t>("sample_keys"));
    for (std::int64_t i = 0; i < n; ++i) join();
    rebuild();
    last_ = place_sample();
    last_.moved = last_.moved_other = 0;  // the first placement is not a move
  }

  void handle(const Request& r) override {
    const NodeId n = route(key_hash(r.key));
    ++outstanding_;
    nodes_[n].server.submit(r, r.service);
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "add_node") {
      if (algorithm_ == Algorithm::maglev && members_.size() + 1 > maglev_size_)
        throw std::invalid_argument("maglev_table must be at least the number of nodes");
      return change("add", join());
    }
    if (op == "remove_node") {
      const NodeId id = member_at(args["node"].as_int());
      leave(id);
      return change("remove", id);
    }
    if (op == "lookup")
      return static_cast<std::int64_t>(
          route(key_hash(static_cast<std::uint64_t>(args["key"].as_int()))));
    List out;  // "nodes"
    for (NodeId id = 0; id < nodes_.size(); ++id) {
      const Node& n = nodes_[id];
      Map row{{"id", static_cast<std::int64_t>(id)},
              {"member", n.member},
              {"alive", n.server.alive()},
              {"keys", n.sample_keys},
              {"served", n.served},
              {"outstanding", static_cast<std::int64_t>(n.server.outstanding())}};
      if (algorithm_ == Algorithm::maglev)
        row["table_entries"] = static_cast<std::int64_t>(
            std::count(maglev_.table().begin(), maglev_.table().end(), token(id)));
      out.push_back(std::move(row));
    }
    return out;
  }

  void inject(const std::string& fault, const Value& p) override {
    const NodeId id = member_at(p["node"].as_int());
    Node& node = nodes_[id];
    if (fault == "slow_node") return node.server.set_slow(p["factor"].as_double());
    if (members_.size() == 1) throw std::invalid_argument("cannot kill the last node");
    // kill: the node crashes; what it was serving or holding in its queue fails, and the
    // membership drops it at once, so its keys move to the survivors.
    node.server.kill([this](Request& r) {
      --outstanding_;
      ctx_.complete(r, Outcome::error);
    });
    leave(id);
    change("kill", id);
  }

  Map figures() const override {
    std::int64_t most = 0, total = 0, members = 0;
    for (const Node& n : nodes_)
      if (n.member) most = std::max(most, n.served), total += n.served, ++members;
    const double mean = members > 0 ? static_cast<double>(total) / members : 0;
    const auto sample = static_cast<double>(sample_.size());
    return {{"moved", last_.moved / sample},
            {"moved_other", last_.moved_other / sample},
            {"key_max_mean", last_.key_max_mean},
            {"key_cv", last_.key_cv},
            {"req_max_mean", mean > 0 ? most / mean : 0.0},
            {"lookup_steps", last_.lookup_steps}};
  }

  void reset_stats() override {
    for (Node& n : nodes_) n.served = 0;
    last_.moved = last_.moved_other = 0;
  }

 private:
  std::uint64_t key_hash(std::uint64_t key) const { return placement::hash_key(key ^ key_salt_); }
  /// The identity a node is placed by (ring points, Maglev permutation): its id xor a salt
  /// from the seed, a bijection, so every seed places the nodes elsewhere.
  NodeId token(NodeId id) const { return id ^ static_cast<NodeId>(node_salt_); }

  /// The member with this id; -1 means the most recently added member.
  NodeId member_at(std::int64_t id) const {
    if (id == -1) return members_.back();
    if (id < 0 || id >= static_cast<std::int64_t>(nodes_.size()) ||
        !nodes_[static_cast<std::size_t>(id)].member)
      throw std::invalid_argument("node " + std::to_string(id) + " is not a member");
    return static_cast<NodeId>(id);
  }

  NodeId join() {
    const auto id = static_cast<NodeId>(nodes_.size());
    nodes_.emplace_back(ctx_, workers_, [this, id](Request& r) {
      --outstanding_;
      ++nodes_[id].served;
      ctx_.complete(r, Outcome::ok);
    });
    members_.push_back(id);
    seeds_.push_back(placement::node_hash(id, node_salt_));
    // Jump hash numbers its buckets: a new node takes the first dead bucket, else a new one.
    auto dead = std::find(buckets_.begin(), buckets_.end(), kNoBucket);
    if (dead != buckets_.end())
      *dead = id;
    else
      buckets_.push_back(id);
    return id;
  }

  void leave(NodeId id) {
    if (members_.size() == 1) throw std::invalid_argument("cannot remove the last node");
    nodes_[id].member = false;
    const auto at = std::find(members_.begin(), members_.end(), id) - members_.begin();
    members_.erase(members_.begin() + at);
    seeds_.erase(seeds_.begin() + at);
    // Jump hash can only drop its last bucket; any other becomes a dead bucket whose keys are
    // re-hashed over the buckets until they hit a live one (only that node's keys move).
    auto bucket = std::find(buckets_.begin(), buckets_.end(), static_cast<std::int64_t>(id));
    if (bucket + 1 == buckets_.end())
      buckets_.pop_back();
    else
      *bucket = kNoBucket;
  }

  void rebuild() {
    std::vector<NodeId> tokens;
    for (NodeId id : members_) tokens.push_back(token(id));
    if (algorithm_ == Algorithm::ring || algorithm_ == Algorithm::ring_vnodes ||
        algorithm_ == Algorithm::bounded_load)
      ring_.build(tokens, vnodes_);
    if (algorithm_ == Algorithm::maglev) maglev_.build(tokens, maglev_size_);
    nodes_metric_.set(static_cast<double>(members_.size()));
  }

  NodeId owner(std::uint64_t h, std::uint64_t& steps) const {
    switch (algorithm_) {
      case Algorithm::mod_n:
        return placement::mod_n(h, members_, steps);
      case Algorithm::ring:
      case Algorithm::ring_vnodes:
      case Algorithm::bounded_load:
        return token(ring_.lookup(h, steps));
      case Algorithm::jump: {
        const auto n = static_cast<std::int64_t>(buckets_.size());
        std::int64_t b = placement::jump(h, n, steps);
        for (std::uint64_t attempt = 1; buckets_[static_cast<std::size_t>(b)] == kNoBucket;
             ++attempt)
          b = placement::jump(Rng::hash(h + attempt), n, steps);
        return static_cast<NodeId>(buckets_[static_cast<std::size_t>(b)]);
      }
      case Algorithm::rendezvous:
        return placement::rendezvous(h, members_, seeds_, steps);
      case Algorithm::maglev:
        return token(maglev_.lookup(h, steps));
    }
    return members_[0];
  }

  /// Where a request goes. Bounded load caps each node's outstanding requests at
  /// ceil((1 + eps) * (total outstanding + 1) / nodes) and walks the ring past full nodes.
  NodeId route(std::uint64_t h) {
    std::uint64_t steps = 0;
    if (algorithm_ != Algorithm::bounded_load) return owner(h, steps);
    const double capacity =
        std::ceil((1 + load_factor_) * static_cast<double>(outstanding_ + 1) / members_.size());
    return bounded(h, capacity, steps, [this](NodeId n) { return nodes_[n].server.outstanding(); });
  }

  /// The ring walk of bounded loads, with the load of a node given by `load(node id)`.
  template <class Load>
  NodeId bounded(std::uint64_t h, double capacity, std::uint64_t& steps, Load load) const {
    struct ByToken {
      const Hashing& self;
      const Load& load;
      double operator[](NodeId t) const { return static_cast<double>(load(self.token(t))); }
    };
    return token(placement::bounded(ring_, h, ByToken{*this, load}, capacity, steps));
  }

  /// Place every key of the sample with the current membership; compare with the last placement.
  ChangeStats place_sample(NodeId changed = 0xffffffffu) {
    ChangeStats s;
    for (Node& n : nodes_) n.sample_keys = 0;
    std::uint64_t steps = 0;
    const double capacity = std::ceil((1 + load_factor_) * static_cast<double>(sample_.size()) /
                                      static_cast<double>(members_.size()));
    for (std::size_t k = 0; k < sample_.size(); ++k) {
      const std::uint64_t h = key_hash(k);
      const NodeId n =
          algorithm_ == Algorithm::bounded_load
              ? bounded(h, capacity, steps, [this](NodeId id) { return nodes_[id].sample_keys; })
              : owner(h, steps);
      ++nodes_[n].sample_keys;
      if (sample_[k] != n) {
        ++s.moved;
        if (sample_[k] != changed && n != changed) ++s.moved_other;
        sample_[k] = n;
      }
    }
    double sum = 0, sum_sq = 0, most = 0;
    for (NodeId id : members_) {
      const auto keys = static_cast<double>(nodes_[id].sample_keys);
      sum += keys, sum_sq += keys * keys, most = std::max(most, keys);
    }
    const double count = static_cast<double>(members_.size()), mean = sum / count;
    s.key_max_mean = most / mean;
    s.key_cv = std::sqrt(std::max(0.0, sum_sq / count - mean * mean)) / mean;
    s.lookup_steps = static_cast<double>(steps) / static_cast<double>(sample_.size());
    return s;
  }

  Value change(const char* what, NodeId id) {
    rebuild();
    last_ = place_sample(id);
    moved_metric_.add(static_cast<double>(last_.moved));
    const auto sample = static_cast<double>(sample_.size());
    ctx_.log(std::string(what) + " node " + std::to_string(id) + ": " +
             std::to_string(last_.moved) + " of " + std::to_string(sample_.size()) +
             " sample keys moved");
    return Map{{"node", static_cast<std::int64_t>(id)},
               {"nodes", static_cast<std::int64_t>(members_.size())},
               {"moved", last_.moved / sample},
               {"moved_keys", last_.moved},
               {"moved_other", last_.moved_other / sample},
               {"key_max_mean", last_.key_max_mean},
               {"key_cv", last_.key_cv},
               {"lookup_steps", last_.lookup_steps}};
  }

  Algorithm algorithm_;
  Context& ctx_;
  std::uint32_t vnodes_;
  std::uint64_t maglev_size_;
  double load_factor_;
  int workers_;
  std::uint64_t key_salt_, node_salt_;  // from the seed: every seed is another placement
  Metric& nodes_metric_;
  Metric& moved_metric_;
  std::deque<Node> nodes_;             // by id; ids are never reused
  std::vector<NodeId> members_;        // ids in the placement, in joining order
  std::vector<std::uint64_t> seeds_;   // rendezvous: one per member
  std::vector<std::int64_t> buckets_;  // jump: bucket -> node id, kNoBucket when dead
  placement::Ring ring_;               // of the members' tokens
  placement::Maglev maglev_;           // of the members' tokens
  std::vector<NodeId> sample_;         // owner of key k of the sample
  ChangeStats last_;
  std::int64_t outstanding_ = 0;  // queued + in service, over all nodes
};

LessonInfo info() {
  const ParamSpec node_param{
      "node", ParamType::integer, -1, "node id (-1: the most recently added member)", -1, 1e9};
  return {
      "consistent_hashing",
      "Consistent hashing: placing keys on nodes that come and go",
      "hash(key) % n ties every key to the number of nodes. Adding an 11th node to 10 remaps "
      "10/11 of the keys (91%), not the 1/11 that the new node should take: caches go cold "
      "and shards copy almost all their data at once. Removing a node is as bad.",
      "Place keys so that a membership change moves only the keys that must move: a hash "
      "ring (with virtual nodes to even the load), jump consistent hash, rendezvous hashing "
      "or a Maglev table. Bounded loads cap any node at (1 + eps) times the average so a hot "
      "key range cannot overload one node.",
      {"Amazon Dynamo and Apache Cassandra (ring with virtual nodes)",
       "Memcached clients: ketama (ring)", "Google Maglev load balancer",
       "Vimeo / HAProxy (consistent hashing with bounded loads)",
       "Google (jump consistent hash for sharded storage)",
       "Rendezvous: Apache Ignite, Ceph CRUSH's idea"},
      {{"mod_n", true, "hash(key) % n: remaps almost every key when n changes"},
       {"ring", false, "hash ring, one point per node: minimal moves, very uneven load"},
       {"ring_vnodes", false, "hash ring with `vnodes` virtual points per node"},
       {"jump", false, "jump consistent hash (Lamping & Veach): no memory, O(ln n)"},
       {"rendezvous", false, "highest random weight: every node scores the key, O(n)"},
       {"maglev", false, "Maglev lookup table of prime size, filled by per-node permutations"},
       {"bounded_load", false,
        "ring with vnodes, skipping nodes above (1 + load_factor) x average load"}},
      {{"nodes", ParamType::integer, 10, "initial number of nodes", 1, 10000},
       {"vnodes", ParamType::integer, 160, "virtual points per node (ring_vnodes, bounded_load)", 1,
        10000},
       {"sample_keys", ParamType::integer, 200000,
        "keys 0..n-1 placed after every change to measure moves and balance", 1, 1e7},
       {"maglev_table", ParamType::integer, 65537, "Maglev table size (prime, >= 100 x nodes)", 2,
        1e8},
       {"load_factor", ParamType::real, 0.25,
        "bounded_load: a node takes at most (1 + load_factor) x the average load", 0.01, 100},
       {"workers", ParamType::integer, 1, "requests a node serves at once", 1, 100000}},
      {{"kill",
        "the node crashes: its queued and in-flight requests fail, its keys move",
        {node_param}},
       {"slow_node",
        "multiply one node's service time",
        {node_param, {"factor", ParamType::real, 10.0, "service time multiplier", 1e-6, 1e6}}}},
      {{"add_node",
        "add a node; returns moved, moved_keys, moved_other, key_max_mean, key_cv, "
        "lookup_steps, node, nodes",
        {}},
       {"remove_node",
        "remove a node gracefully (it finishes its queue); returns as add_node",
        {node_param}},
       {"lookup",
        "the node id that owns a key",
        {{"key", ParamType::integer, Value(), "key", 0, 9.2e18}}},
       {"nodes",
        "every node: id, member, alive, keys (of the sample), served, outstanding "
        "(and table_entries for maglev)",
        {}}},
      {{"nodes", MetricSpec::Kind::gauge, "nodes in the placement"},
       {"keys_moved", MetricSpec::Kind::counter, "sample keys moved by membership changes"}},
      {{"moved", Unit::fraction, "sample keys whose owner changed at the last membership change"},
       {"moved_other", Unit::fraction,
        "sample keys moved between two nodes that did not change (0: minimal disruption)"},
       {"key_max_mean", Unit::number, "sample keys on the fullest node / mean"},
       {"key_cv", Unit::number, "coefficient of variation of the sample keys per node"},
       {"req_max_mean", Unit::number, "requests served by the busiest node / mean"},
       {"lookup_steps", Unit::number, "steps per lookup (probes, jumps, scores, ring walk)"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Algorithm> algorithms[] = {
      {"mod_n", Algorithm::mod_n},
      {"ring", Algorithm::ring},
      {"ring_vnodes", Algorithm::ring_vnodes},
      {"jump", Algorithm::jump},
      {"rendezvous", Algorithm::rendezvous},
      {"maglev", Algorithm::maglev},
      {"bounded_load", Algorithm::bounded_load}};
  return std::make_unique<Hashing>(variant_value(variant, algorithms), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
