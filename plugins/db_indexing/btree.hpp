// A B+-tree whose nodes are pages: what a database index is (PostgreSQL nbtree, InnoDB).
//
// Every node holds at most `fanout` entries (B): a leaf holds index entries (key columns + the
// row id), an internal node holds B child pointers separated by B - 1 keys. Leaves are chained
// left to right, so a range is read by one descent and then leaf after leaf. Each leaf keeps
// its high key (a bound on every key to its right, PostgreSQL's "high key"), so a scan stops
// at a leaf's end without reading the next page when the range ends before the high key.
//
// A bulk load (CREATE INDEX on a full table) fills every node: ceil(n / B) leaves, ceil(n / B^2)
// parents, ... so the height, root to leaf, is exactly ceil(log_B n) nodes. Inserts descend
// (height pages read), write the leaf, and split full nodes (half and half, or, for the
// rightmost leaf taking ever-increasing keys, leaving the left node full as PostgreSQL and
// InnoDB do); a split of the root adds a level.
//
// Work is counted, not timed: pages read and written, key comparisons.
#pragma once

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace hldlab::db {

constexpr std::size_t kMaxKeyColumns = 3;

/// An index entry: up to three key columns (unused ones are 0), then the row id, which makes
/// every key unique (PostgreSQL appends the heap TID the same way).
struct IndexKey {
  std::array<std::int32_t, kMaxKeyColumns> columns{};
  std::uint32_t row = 0;
  auto operator<=>(const IndexKey&) const = default;
};

/// What one tree operation cost.
struct TreeWork {
  std::int64_t pages_read = 0;
  std::int64_t pages_written = 0;
  std::int64_t comparisons = 0;
  std::int64_t splits = 0;
};

/// Key order, counting every comparison.
struct Counting {
  TreeWork& work;
  bool operator()(const IndexKey& a, const IndexKey& b) const {
    ++work.comparisons;
    return a < b;
  }
};

class BPlusTree {
 public:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  explicit BPlusTree(std::size_t fanout) : fanout_(fanout) {
    if (fanout < 3) throw std::invalid_argument("a B+-tree node needs room for 3 entries");
    nodes_.push_back(Node{});  // an empty leaf as the root
  }

  /// Replace the contents by `sorted` (ascending, unique), every node full: CREATE INDEX.
  void bulk_load(const std::vector<IndexKey>& sorted) {
    nodes_.clear();
    size_ = sorted.size();
    struct Child {
      std::uint32_t node;
      IndexKey low;  // smallest key below it
    };
    std::vector<Child> level;
    for (std::size_t at = 0; at < sorted.size() || level.empty(); at += fanout_) {
      const std::size_t end = std::min(sorted.size(), at + fanout_);
      Node leaf;
      leaf.keys.reserve(fanout_ + 1);
      leaf.keys.assign(sorted.begin() + static_cast<std::ptrdiff_t>(at),
                       sorted.begin() + static_cast<std::ptrdiff_t>(end));
      if (!level.empty()) {
        nodes_[level.back().node].next = static_cast<std::uint32_t>(nodes_.size());
        nodes_[level.back().node].high_key = leaf.keys.front();
        nodes_[level.back().node].has_high_key = true;
      }
      level.push_back({static_cast<std::uint32_t>(nodes_.size()),
                       leaf.keys.empty() ? IndexKey{} : leaf.keys.front()});
      nodes_.push_back(std::move(leaf));
    }
    height_ = 1;
    while (level.size() > 1) {
      std::vector<Child> parents;
      for (std::size_t at = 0; at < level.size(); at += fanout_) {
        const std::size_t end = std::min(level.size(), at + fanout_);
        Node inner;
        inner.leaf = false;
        inner.keys.reserve(fanout_);
        inner.children.reserve(fanout_ + 1);
        for (std::size_t i = at; i < end; ++i) {
          if (i > at) inner.keys.push_back(level[i].low);
          inner.children.push_back(level[i].node);
        }
        parents.push_back({static_cast<std::uint32_t>(nodes_.size()), level[at].low});
        nodes_.push_back(std::move(inner));
      }
      level.swap(parents);
      ++height_;
    }
    root_ = level.front().node;
  }

  /// Add `key` (not already present).
  void insert(const IndexKey& key, TreeWork& work) {
    path_.clear();
    std::uint32_t node = root_;
    ++work.pages_read;
    while (!nodes_[node].leaf) {
      const std::size_t slot = child_slot(nodes_[node], key, work);
      path_.push_back({node, slot});
      node = nodes_[node].children[slot];
      ++work.pages_read;
    }
    auto& keys = nodes_[node].keys;
    const auto at = std::lower_bound(keys.begin(), keys.end(), key, Counting{work});
    const bool appended = at == keys.end();
    keys.insert(at, key);
    ++size_;
    ++work.pages_written;
    if (keys.size() <= fanout_) return;

    // The leaf overflows: split it, then insert the separator into the parents up the path.
    const bool rightmost = nodes_[node].next == kNone && appended;
    IndexKey separator;
    std::uint32_t right = split_leaf(node, rightmost, separator, work);
    while (right != kNone) {
      if (path_.empty()) {  // the root split: a new root one level up
        Node root;
        root.leaf = false;
        root.keys = {separator};
        root.children = {root_, right};
        root_ = add(std::move(root));
        ++work.pages_written;
        ++height_;
        return;
      }
      const auto [parent, slot] = path_.back();
      path_.pop_back();
      Node& p = nodes_[parent];
      p.keys.insert(p.keys.begin() + static_cast<std::ptrdiff_t>(slot), separator);
      p.children.insert(p.children.begin() + static_cast<std::ptrdiff_t>(slot) + 1, right);
      ++work.pages_written;
      if (p.children.size() <= fanout_) return;
      right = split_inner(parent, rightmost && slot + 1 == p.children.size() - 1, separator, work);
    }
  }

  /// Visit the entries in [from, to] in key order: one descent to the leaf holding `from`, then
  /// along the leaves. `visit(const IndexKey&)` returns false to stop early (a LIMIT).
  template <class Visit>
  void scan(const IndexKey& from, const IndexKey& to, TreeWork& work, Visit&& visit) const {
    std::uint32_t node = root_;
    ++work.pages_read;
    while (!nodes_[node].leaf) {
      node = nodes_[node].children[child_slot(nodes_[node], from, work)];
      ++work.pages_read;
    }
    const auto* keys = &nodes_[node].keys;
    auto at = static_cast<std::size_t>(
        std::lower_bound(keys->begin(), keys->end(), from, Counting{work}) - keys->begin());
    for (;;) {
      if (at == keys->size()) {
        const Node& leaf = nodes_[node];
        ++work.comparisons;
        if (leaf.next == kNone || !leaf.has_high_key || to < leaf.high_key) return;
        node = leaf.next;
        keys = &nodes_[node].keys;
        at = 0;
        ++work.pages_read;
        continue;
      }
      ++work.comparisons;
      if (to < (*keys)[at]) return;
      if (!visit((*keys)[at])) return;
      ++at;
    }
  }

  /// Nodes from the root to a leaf, both included: ceil(log_B n) after a bulk load.
  int height() const { return height_; }
  /// Nodes (pages) in the tree.
  std::size_t pages() const { return nodes_.size(); }
  std::size_t leaves() const {
    return static_cast<std::size_t>(
        std::count_if(nodes_.begin(), nodes_.end(), [](const Node& n) { return n.leaf; }));
  }
  std::size_t size() const { return size_; }
  std::size_t fanout() const { return fanout_; }

  /// The smallest number of levels h with B^h >= n: ceil(log_B n) in integers (1 for n <= 1).
  static int height_for(std::size_t n, std::size_t fanout) {
    int h = 1;
    for (double capacity = static_cast<double>(fanout); capacity < static_cast<double>(n);
         capacity *= static_cast<double>(fanout))
      ++h;
    return h;
  }

 private:
  struct Node {
    bool leaf = true;
    bool has_high_key = false;
    std::vector<IndexKey> keys;  // leaf: entries; inner: keys[i] = smallest key under child i+1
    std::vector<std::uint32_t> children;
    std::uint32_t next = kNone;  // leaf: the right sibling
    IndexKey high_key;           // leaf: every key to the right is >= this
  };
  struct Step {
    std::uint32_t node;
    std::size_t slot;
  };

  /// The child of an inner node whose subtree holds `key`: the number of separators <= key.
  static std::size_t child_slot(const Node& n, const IndexKey& key, TreeWork& work) {
    return static_cast<std::size_t>(
        std::upper_bound(n.keys.begin(), n.keys.end(), key, Counting{work}) - n.keys.begin());
  }

  std::uint32_t add(Node node) {
    nodes_.push_back(std::move(node));
    return static_cast<std::uint32_t>(nodes_.size() - 1);
  }

  /// Split an overflowing leaf; returns the new right leaf and sets its first key as separator.
  std::uint32_t split_leaf(std::uint32_t left, bool rightmost, IndexKey& separator,
                           TreeWork& work) {
    Node right;
    right.keys.reserve(fanout_ + 1);
    auto& keys = nodes_[left].keys;
    const std::size_t keep = rightmost ? keys.size() - 1 : (keys.size() + 1) / 2;
    right.keys.assign(keys.begin() + static_cast<std::ptrdiff_t>(keep), keys.end());
    keys.resize(keep);
    separator = right.keys.front();
    right.next = nodes_[left].next;
    right.high_key = nodes_[left].high_key;
    right.has_high_key = nodes_[left].has_high_key;
    const std::uint32_t id = add(std::move(right));
    nodes_[left].next = id;
    nodes_[left].high_key = separator;
    nodes_[left].has_high_key = true;
    ++work.pages_written;
    ++work.splits;
    return id;
  }

  /// Split an overflowing inner node; the middle separator moves up (returned in `separator`).
  std::uint32_t split_inner(std::uint32_t left, bool rightmost, IndexKey& separator,
                            TreeWork& work) {
    Node right;
    right.leaf = false;
    Node& l = nodes_[left];
    const std::size_t keep = rightmost ? l.children.size() - 1 : (l.children.size() + 1) / 2;
    separator = l.keys[keep - 1];
    right.children.assign(l.children.begin() + static_cast<std::ptrdiff_t>(keep), l.children.end());
    right.keys.assign(l.keys.begin() + static_cast<std::ptrdiff_t>(keep), l.keys.end());
    l.children.resize(keep);
    l.keys.resize(keep - 1);
    ++work.pages_written;
    ++work.splits;
    return add(std::move(right));
  }

  std::size_t fanout_;
  std::vector<Node> nodes_;
  std::uint32_t root_ = 0;
  int height_ = 1;
  std::size_t size_ = 0;
  std::vector<Step> path_;  // scratch for insert: no allocation per insert once grown
};

}  // namespace hldlab::db
