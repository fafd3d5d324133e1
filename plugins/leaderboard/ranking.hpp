// The structures of the leaderboard lesson, real and self-contained (the tests and the
// benchmark use them directly): a table of scores scanned per query (what a database does
// without an index on the score), and a skip list with spans (Redis's sorted set) that
// answers ranks in O(log n). Every operation adds the work it did to a Work record, which
// the lesson turns into time through its cost model.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "hldlab/sim.hpp"

namespace ranking {

/// The work of one operation.
struct Work {
  std::uint64_t rows = 0;      ///< rows read by a table scan
  std::uint64_t nodes = 0;     ///< nodes visited (a random memory access each)
  std::uint64_t compares = 0;  ///< comparisons of two entries
};

/// A player's place in the order: higher score first, then the smaller tie-break (the
/// sequence number of the update that reached the score, or 0 when ties go by player id),
/// then the smaller player id. Every entry is distinct, so every player has one rank.
struct Entry {
  std::int64_t score = 0;
  std::uint64_t tie = 0;
  std::uint32_t player = 0;
};
inline bool before(const Entry& a, const Entry& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.tie != b.tie) return a.tie < b.tie;
  return a.player < b.player;
}

/// @brief The naive leaderboard: a table of (player, score) with no index on the score. A
/// rank is SELECT COUNT(*) WHERE (score, tie, player) ranks before mine, a full scan; the top
/// k is ORDER BY score DESC LIMIT k, a scan through a k-heap. An update writes one row.
class ScoreTable {
 public:
  explicit ScoreTable(std::uint32_t players) : rows_(players) {
    for (std::uint32_t p = 0; p < players; ++p) rows_[p].player = p;
  }
  void set(const Entry& e, Work& work) {
    ++work.nodes;
    rows_[e.player] = e;
  }
  const Entry& entry(std::uint32_t player) const { return rows_[player]; }
  /// 1 + the players ranked before `player`.
  std::uint64_t rank(std::uint32_t player, Work& work) const {
    const Entry mine = rows_[player];
    std::uint64_t ahead = 0;
    for (const Entry& e : rows_) ahead += before(e, mine);
    work.rows += rows_.size();
    work.compares += rows_.size();
    return ahead + 1;
  }
  /// The players with a strictly higher score than `score` (shared ranks: 1 + this).
  std::uint64_t count_above(std::int64_t score, Work& work) const {
    std::uint64_t above = 0;
    for (const Entry& e : rows_) above += e.score > score;
    work.rows += rows_.size();
    work.compares += rows_.size();
    return above;
  }
  /// The first k in the order, into `out`.
  void top(std::size_t k, std::vector<Entry>& out, Work& work) const {
    out.clear();
    auto better = [&work](const Entry& a, const Entry& b) {
      ++work.compares;
      return before(a, b);
    };
    for (const Entry& e : rows_) {  // `out` is a heap whose front is the worst of the best k
      ++work.rows;
      if (out.size() < k) {
        out.push_back(e);
        std::push_heap(out.begin(), out.end(), better);
      } else if (better(e, out.front())) {
        std::pop_heap(out.begin(), out.end(), better);
        out.back() = e;
        std::push_heap(out.begin(), out.end(), better);
      }
    }
    std::sort_heap(out.begin(), out.end(), better);
  }
  std::size_t size() const { return rows_.size(); }
  std::size_t memory_bytes() const { return rows_.size() * sizeof(Entry); }

 private:
  std::vector<Entry> rows_;  // by player id
};

/// @brief A skip list with spans (Pugh 1990; the rank-augmented version of Redis's zset):
/// every node has 1 + Geometric(1/4) levels; a link at level i skips `span` entries, so a
/// search that adds up the spans it jumps knows the rank where it stops. Search, insert,
/// erase and rank all cost O(log n) expected node visits; the top k is the first k nodes of
/// level 0. Nodes are stored by player id (the player -> node map of Redis's dict) and reused
/// by updates, so an update allocates nothing.
class SkipList {
 public:
  static constexpr int kMaxLevel = 32;

  /// Room for players 0..players-1; the level of each player's node is drawn from `seed`.
  SkipList(std::uint32_t players, std::uint64_t seed) : nodes_(players + 1) {
    std::uint32_t links = kMaxLevel;
    for (std::uint32_t p = 0; p < players; ++p) {
      std::uint64_t h = hldlab::Rng::hash(p ^ seed);
      int level = 1;
      while ((h & 3) == 0 && level < kMaxLevel) ++level, h >>= 2;  // P(level > l) = 4^-l
      nodes_[p].level = static_cast<std::uint8_t>(level);
      nodes_[p].first_link = links;
      links += static_cast<std::uint32_t>(level);
    }
    head().level = kMaxLevel;
    head().first_link = 0;
    links_.assign(links, Link{});
  }

  /// Add `e.player` (absent) at its place in the order.
  void insert(const Entry& e, Work& work) {
    std::uint32_t update[kMaxLevel];
    std::uint64_t rank[kMaxLevel];
    std::uint32_t x = kHead;
    for (int i = levels_ - 1; i >= 0; --i) {
      rank[i] = i == levels_ - 1 ? 0 : rank[i + 1];
      for (std::uint32_t next = link(x, i).next; next != kNil; next = link(x, i).next) {
        ++work.nodes;
        ++work.compares;
        if (!before(nodes_[next].entry, e)) break;
        rank[i] += link(x, i).span;
        x = next;
      }
      update[i] = x;
    }
    Node& node = nodes_[e.player];
    if (node.present) throw std::logic_error("skip list: player already present");
    const int level = node.level;
    for (int i = levels_; i < level; ++i) {
      rank[i] = 0;
      update[i] = kHead;
      link(kHead, i).span = static_cast<std::uint32_t>(size_);
    }
    levels_ = std::max(levels_, level);
    node.entry = e;
    node.present = true;
    for (int i = 0; i < level; ++i) {
      Link& prev = link(update[i], i);
      Link& mine = link(e.player, i);
      mine.next = prev.next;
      prev.next = e.player;
      mine.span = prev.span - static_cast<std::uint32_t>(rank[0] - rank[i]);
      prev.span = static_cast<std::uint32_t>(rank[0] - rank[i]) + 1;
    }
    for (int i = level; i < levels_; ++i) ++link(update[i], i).span;
    ++size_;
  }

  /// Remove `player` (present).
  void erase(std::uint32_t player, Work& work) {
    Node& node = nodes_[player];
    if (!node.present) throw std::logic_error("skip list: player not present");
    std::uint32_t update[kMaxLevel];
    std::uint32_t x = kHead;
    for (int i = levels_ - 1; i >= 0; --i) {
      for (std::uint32_t next = link(x, i).next; next != kNil; next = link(x, i).next) {
        ++work.nodes;
        ++work.compares;
        if (!before(nodes_[next].entry, node.entry)) break;
        x = next;
      }
      update[i] = x;
    }
    for (int i = 0; i < levels_; ++i) {
      Link& prev = link(update[i], i);
      if (prev.next == player) {
        prev.span += link(player, i).span - 1;
        prev.next = link(player, i).next;
      } else {
        --prev.span;
      }
    }
    while (levels_ > 1 && link(kHead, levels_ - 1).next == kNil) --levels_;
    node.present = false;
    --size_;
  }

  /// 1-based rank of `player` (present): the spans jumped on the way down to its node.
  std::uint64_t rank(std::uint32_t player, Work& work) const {
    const Entry& target = nodes_[player].entry;
    std::uint64_t rank = 0;
    std::uint32_t x = kHead;
    for (int i = levels_ - 1; i >= 0; --i) {
      for (std::uint32_t next = link(x, i).next; next != kNil; next = link(x, i).next) {
        ++work.nodes;
        ++work.compares;
        if (before(target, nodes_[next].entry)) break;  // next ranks after the target
        rank += link(x, i).span;
        x = next;
      }
      if (x == player) return rank;
    }
    throw std::logic_error("skip list: player not present");
  }
  /// The entries with a strictly higher score than `score` (shared ranks: 1 + this).
  std::uint64_t count_above(std::int64_t score, Work& work) const {
    std::uint64_t above = 0;
    std::uint32_t x = kHead;
    for (int i = levels_ - 1; i >= 0; --i) {
      for (std::uint32_t next = link(x, i).next; next != kNil; next = link(x, i).next) {
        ++work.nodes;
        ++work.compares;
        if (nodes_[next].entry.score <= score) break;
        above += link(x, i).span;
        x = next;
      }
    }
    return above;
  }
  /// The first k entries, into `out`: k nodes of level 0.
  void top(std::size_t k, std::vector<Entry>& out, Work& work) const {
    out.clear();
    for (std::uint32_t x = link(kHead, 0).next; x != kNil && out.size() < k; x = link(x, 0).next) {
      ++work.nodes;
      out.push_back(nodes_[x].entry);
    }
  }

  bool contains(std::uint32_t player) const { return nodes_[player].present; }
  const Entry& entry(std::uint32_t player) const { return nodes_[player].entry; }
  std::size_t size() const { return size_; }
  int levels() const { return levels_; }
  int level_of(std::uint32_t player) const { return nodes_[player].level; }
  std::size_t memory_bytes() const {
    return nodes_.size() * sizeof(Node) + links_.size() * sizeof(Link);
  }

 private:
  static constexpr std::uint32_t kNil = ~std::uint32_t{0};
  struct Link {
    std::uint32_t next = kNil;  // the node this level links to
    std::uint32_t span = 0;     // entries the link skips: rank(next) - rank(this node)
  };
  struct Node {
    Entry entry;
    std::uint32_t first_link = 0;  // its levels are links_[first_link, first_link + level)
    std::uint8_t level = 0;
    bool present = false;
  };

  Node& head() { return nodes_.back(); }
  Link& link(std::uint32_t node, int i) {
    return links_[(node == kHead ? 0 : nodes_[node].first_link) + static_cast<std::uint32_t>(i)];
  }
  const Link& link(std::uint32_t node, int i) const {
    return links_[(node == kHead ? 0 : nodes_[node].first_link) + static_cast<std::uint32_t>(i)];
  }

  static constexpr std::uint32_t kHead = kNil - 1;  // the header node (nodes_.back())
  std::vector<Node> nodes_;                         // by player id; the last one is the header
  std::vector<Link> links_;                         // the header's kMaxLevel links first
  int levels_ = 1;
  std::size_t size_ = 0;
};

}  // namespace ranking
