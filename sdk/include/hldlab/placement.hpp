/// @file placement.hpp
/// @brief Key -> node placement algorithms, written from the papers' descriptions:
///   ring (Karger et al. 1997) with virtual nodes, jump consistent hash (Lamping & Veach 2014),
///   rendezvous / highest random weight (Thaler & Ravishankar 1998), Maglev hashing (Eisenbud et
///   al. 2016) and consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam 2018).
/// Part of the SDK so that every lesson (consistent_hashing, sharding, ...) and out-of-tree
/// plugins can place keys the same way.
/// Every function that places a key takes the key's 64-bit hash (hash_key) and adds the work it
/// did (binary-search probes, jumps, node scores, ring points walked) to `steps`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab::placement {

using NodeId = std::uint32_t;

inline std::uint64_t hash_key(std::uint64_t key) {
  return Rng::hash(key);
}

/// A node's identity hash, salted so different uses of the same node id are independent.
inline std::uint64_t node_hash(NodeId node, std::uint64_t salt) {
  return Rng::hash(Rng::hash(node) ^ salt);
}

/// Naive: the i-th live node, i = hash mod n. Changing n remaps almost every key.
inline NodeId mod_n(std::uint64_t h, const std::vector<NodeId>& nodes, std::uint64_t& steps) {
  ++steps;
  return nodes[h % nodes.size()];
}

/// Jump consistent hash: a key's bucket only ever jumps forward as buckets are added. Starting
/// from bucket b = 0, the next bucket at which the key would move is floor((b + 1) / r) for a
/// uniform r in (0, 1] drawn from the key's own random sequence; the last jump below `buckets`
/// is the answer. O(ln buckets) jumps, no memory.
inline std::int64_t jump(std::uint64_t h, std::int64_t buckets, std::uint64_t& steps) {
  std::uint64_t state = h;
  std::int64_t b = -1;
  double j = 0;
  while (j < static_cast<double>(buckets)) {
    b = static_cast<std::int64_t>(j);
    ++steps;
    const double r = static_cast<double>((Rng::splitmix64(state) >> 11) + 1) * 0x1.0p-53;
    j = std::floor(static_cast<double>(b + 1) / r);
  }
  return b;
}

/// Rendezvous (highest random weight): every node scores the key, the highest score wins.
/// Removing a node only moves the keys it won; O(n) per lookup.
inline NodeId rendezvous(std::uint64_t h, const std::vector<NodeId>& nodes,
                         const std::vector<std::uint64_t>& seeds, std::uint64_t& steps) {
  NodeId best = nodes[0];
  std::uint64_t best_score = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const std::uint64_t score = Rng::hash(h ^ seeds[i]);
    if (i == 0 || score > best_score) best_score = score, best = nodes[i];
  }
  steps += nodes.size();
  return best;
}

/// The hash ring: `vnodes` points per node, a key belongs to the first point clockwise. The
/// `salt` places the points (another salt, another placement: draw it from ctx.rng() so that
/// placements vary with the seed).
class Ring {
 public:
  void build(const std::vector<NodeId>& nodes, std::uint32_t vnodes,
             std::uint64_t salt = 0x52494e47ULL) {
    points_.clear();
    points_.reserve(nodes.size() * vnodes);
    for (NodeId n : nodes)
      for (std::uint32_t v = 0; v < vnodes; ++v)
        points_.push_back({Rng::hash((static_cast<std::uint64_t>(n) << 32 | v) ^ salt), n});
    std::sort(points_.begin(), points_.end());
  }
  /// Index of the first point at or after h (wrapping), by binary search.
  std::size_t first_point(std::uint64_t h, std::uint64_t& steps) const {
    std::size_t lo = 0, hi = points_.size();
    while (lo < hi) {
      ++steps;
      const std::size_t mid = lo + (hi - lo) / 2;
      if (points_[mid].first < h)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo == points_.size() ? 0 : lo;
  }
  NodeId lookup(std::uint64_t h, std::uint64_t& steps) const {
    return points_[first_point(h, steps)].second;
  }
  std::size_t size() const { return points_.size(); }
  NodeId node_at(std::size_t i) const { return points_[i].second; }

 private:
  std::vector<std::pair<std::uint64_t, NodeId>> points_;
};

inline bool is_prime(std::uint64_t n) {
  if (n < 2) return false;
  for (std::uint64_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

/// Maglev: a lookup table of prime size M. Each node has its own permutation of the slots
/// (offset + j * skip mod M); nodes take turns claiming their next free preferred slot until
/// the table is full, so every node owns M/n slots, give or take one. The `salt` changes the
/// permutations (another placement).
class Maglev {
 public:
  void build(const std::vector<NodeId>& nodes, std::uint64_t size, std::uint64_t salt = 0) {
    if (!is_prime(size))
      throw std::invalid_argument("maglev table size " + std::to_string(size) + " is not prime");
    if (nodes.size() > size)
      throw std::invalid_argument("maglev table smaller than the number of nodes");
    const std::size_t n = nodes.size();
    std::vector<std::uint64_t> offset(n), skip(n), next(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      offset[i] = node_hash(nodes[i], 0x4f4646534554ULL ^ salt) % size;
      skip[i] = node_hash(nodes[i], 0x534b4950ULL ^ salt) % (size - 1) + 1;
    }
    table_.assign(size, kEmpty);
    std::uint64_t filled = 0;
    while (true) {
      for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t slot = (offset[i] + next[i] * skip[i]) % size;
        while (table_[slot] != kEmpty) slot = (offset[i] + ++next[i] * skip[i]) % size;
        table_[slot] = nodes[i];
        ++next[i];
        if (++filled == size) return;
      }
    }
  }
  NodeId lookup(std::uint64_t h, std::uint64_t& steps) const {
    ++steps;
    return table_[h % table_.size()];
  }
  const std::vector<NodeId>& table() const { return table_; }

 private:
  static constexpr NodeId kEmpty = 0xffffffffu;
  std::vector<NodeId> table_;
};

/// Bounded loads: walk the ring from the key's point and take the first node whose load is
/// below `capacity` (= ceil((1 + eps) * average load)). `load` is indexed by node id.
template <class Load>
NodeId bounded(const Ring& ring, std::uint64_t h, const Load& load, double capacity,
               std::uint64_t& steps) {
  std::size_t i = ring.first_point(h, steps);
  for (std::size_t walked = 0; walked < ring.size(); ++walked, i = (i + 1) % ring.size()) {
    ++steps;
    const NodeId n = ring.node_at(i);
    if (static_cast<double>(load[n]) < capacity) return n;
  }
  return ring.node_at(i);  // every node full: cannot happen when capacity > average
}

}  // namespace hldlab::placement
