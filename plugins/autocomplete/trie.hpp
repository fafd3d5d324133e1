// The structures of type-ahead over a fixed dictionary of terms whose popularity (search
// counts) changes: a sorted list scanned by prefix, and a trie, with or without the top-k
// terms cached in every node.
//
// Every term has an id; popularity is a count per id. "Better" is a total order: the higher
// count, then the lower id. Every query returns the k best terms starting with the prefix, in
// that order, so two structures that agree return the same list.
//
// Work is counted, not timed: nodes or rows visited, comparisons.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab::typeahead {

using TermId = std::uint32_t;

struct Work {
  std::int64_t nodes = 0;        // trie nodes or list rows visited
  std::int64_t comparisons = 0;  // string, character and count comparisons
};

/// The dictionary: term strings and their live search counts.
class Terms {
 public:
  explicit Terms(std::vector<std::string> terms, std::vector<std::int64_t> counts)
      : text_(std::move(terms)), count_(std::move(counts)) {}
  std::size_t size() const { return text_.size(); }
  const std::string& text(TermId t) const { return text_[t]; }
  std::int64_t count(TermId t) const { return count_[t]; }
  void add(TermId t, std::int64_t delta) { count_[t] += delta; }
  const std::vector<std::int64_t>& counts() const { return count_; }
  /// True when `a` ranks before `b` under `counts`.
  static bool better(const std::vector<std::int64_t>& counts, TermId a, TermId b) {
    return counts[a] != counts[b] ? counts[a] > counts[b] : a < b;
  }
  std::size_t bytes() const {
    std::size_t chars = 0;
    for (const auto& t : text_) chars += t.size() + 1;
    return chars + text_.size() * (sizeof(std::uint32_t) + sizeof(std::int64_t));
  }

 private:
  std::vector<std::string> text_;
  std::vector<std::int64_t> count_;
};

/// Keep the k best of the offered terms, best first (a bounded insertion list: k is small).
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) { best_.reserve(k + 1); }
  void clear() { best_.clear(); }
  void offer(TermId t, const std::vector<std::int64_t>& counts, Work& w) {
    ++w.comparisons;
    if (best_.size() == k_ && !Terms::better(counts, t, best_.back())) return;
    std::size_t at = best_.size();
    while (at > 0 && (++w.comparisons, Terms::better(counts, t, best_[at - 1]))) --at;
    best_.insert(best_.begin() + static_cast<std::ptrdiff_t>(at), t);
    if (best_.size() > k_) best_.pop_back();
  }
  const std::vector<TermId>& best() const { return best_; }

 private:
  std::size_t k_;
  std::vector<TermId> best_;
};

/// The naive way: the terms sorted alphabetically; a prefix is a contiguous range found by
/// binary search, then every term in it is read (SQL: WHERE term LIKE 'pre%' ORDER BY count
/// DESC LIMIT k, on an index of term): O(log n + matches).
class SortedList {
 public:
  explicit SortedList(const Terms& terms) : terms_(terms) {
    order_.resize(terms.size());
    for (TermId t = 0; t < terms.size(); ++t) order_[t] = t;
    std::sort(order_.begin(), order_.end(),
              [&](TermId a, TermId b) { return terms.text(a) < terms.text(b); });
  }
  /// The k best terms starting with `prefix` by `counts`; `matches` gets how many start with it.
  void complete(std::string_view prefix, const std::vector<std::int64_t>& counts, TopK& out,
                Work& w, std::int64_t& matches) const {
    out.clear();
    auto first =
        std::lower_bound(order_.begin(), order_.end(), prefix, [&](TermId t, std::string_view p) {
          ++w.comparisons;
          return std::string_view(terms_.text(t)) < p;
        });
    matches = 0;
    for (auto it = first; it != order_.end(); ++it) {
      ++w.nodes;
      ++w.comparisons;
      if (std::string_view(terms_.text(*it)).substr(0, prefix.size()) != prefix) break;
      ++matches;
      out.offer(*it, counts, w);
    }
  }
  std::size_t bytes() const { return order_.size() * sizeof(TermId); }

 private:
  const Terms& terms_;
  std::vector<TermId> order_;  // term ids in alphabetical order
};

/// A trie of the dictionary: one node per distinct prefix, children sorted by character and
/// stored contiguously. With `k` > 0 every node caches the k best terms below it.
class Trie {
 public:
  static constexpr TermId kNoTerm = 0xffffffffu;

  Trie(const Terms& terms, std::size_t k) : k_(k) {
    // Insert the terms in alphabetical order, building each node's children contiguously
    // level by level would need a second pass; instead build a pointer trie, then lay it out.
    struct Building {
      char c;
      TermId term = kNoTerm;
      std::vector<std::uint32_t> children;
    };
    std::vector<Building> b(1, Building{0, kNoTerm, {}});
    for (TermId t = 0; t < terms.size(); ++t) {
      std::uint32_t node = 0;
      for (char c : terms.text(t)) {
        std::uint32_t next = 0;
        for (std::uint32_t child : b[node].children)
          if (b[child].c == c) next = child;
        if (next == 0) {
          next = static_cast<std::uint32_t>(b.size());
          b.push_back(Building{c, kNoTerm, {}});
          b[node].children.push_back(next);
        }
        node = next;
      }
      b[node].term = t;
    }
    // Breadth-first layout: a node's children are consecutive, sorted by character.
    nodes_.reserve(b.size());
    nodes_.push_back(Node{0, 0, 0, b[0].term});
    std::vector<std::uint32_t> from(1, 0);  // nodes_[i] was b[from[i]]
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      auto children = b[from[i]].children;
      std::sort(children.begin(), children.end(),
                [&](std::uint32_t x, std::uint32_t y) { return b[x].c < b[y].c; });
      nodes_[i].first_child = static_cast<std::uint32_t>(nodes_.size());
      nodes_[i].child_count = static_cast<std::uint32_t>(children.size());
      for (std::uint32_t child : children) {
        nodes_.push_back(Node{b[child].c, 0, 0, b[child].term});
        from.push_back(child);
      }
    }
    parent_.assign(nodes_.size(), 0);
    for (std::uint32_t i = 0; i < nodes_.size(); ++i)
      for (std::uint32_t c = 0; c < nodes_[i].child_count; ++c)
        parent_[nodes_[i].first_child + c] = i;
    leaf_of_.assign(terms.size(), 0);
    for (std::uint32_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].term != kNoTerm) leaf_of_[nodes_[i].term] = i;
    if (k_ > 0) {
      top_.assign(nodes_.size() * k_, kNoTerm);
      rebuild(terms.counts());
    }
  }

  /// The node of `prefix` (walking one child per character), or 0 with `found` false.
  std::uint32_t find(std::string_view prefix, Work& w, bool& found) const {
    std::uint32_t node = 0;
    for (char c : prefix) {
      const Node& n = nodes_[node];
      std::uint32_t next = 0;
      for (std::uint32_t i = 0; i < n.child_count; ++i) {
        ++w.comparisons;
        if (nodes_[n.first_child + i].c == c) {
          next = n.first_child + i;
          break;
        }
      }
      if (next == 0) {
        found = false;
        return 0;
      }
      ++w.nodes;
      node = next;
    }
    found = true;
    return node;
  }

  /// A trie without cache: find the prefix's node, then visit its whole subtree.
  void complete_by_walk(std::string_view prefix, const std::vector<std::int64_t>& counts, TopK& out,
                        Work& w) {
    out.clear();
    bool found = false;
    const std::uint32_t start = find(prefix, w, found);
    if (!found) return;
    stack_.clear();
    stack_.push_back(start);
    while (!stack_.empty()) {
      const std::uint32_t node = stack_.back();
      stack_.pop_back();
      if (node != start) ++w.nodes;  // the prefix's own node was counted by find
      const Node& n = nodes_[node];
      if (n.term != kNoTerm) out.offer(n.term, counts, w);
      for (std::uint32_t i = 0; i < n.child_count; ++i) stack_.push_back(n.first_child + i);
    }
  }

  /// With the cache: find the prefix's node and read its list. Visits prefix.size() nodes.
  void complete_cached(std::string_view prefix, std::vector<TermId>& out, Work& w) const {
    out.clear();
    bool found = false;
    const std::uint32_t node = find(prefix, w, found);
    if (!found) return;
    for (std::size_t i = 0; i < k_ && top_[node * k_ + i] != kNoTerm; ++i)
      out.push_back(top_[node * k_ + i]);
  }

  /// Term `t`'s count went up: move it up (or into) the cached list of every node on its path,
  /// from its own node up to the root. Exact as long as counts only grow: a term can only
  /// enter a list by beating its last entry.
  void raised(TermId t, const std::vector<std::int64_t>& counts, Work& w) {
    for (std::uint32_t node = leaf_of_[t];; node = parent_[node]) {
      update_list(node, t, counts, w);
      if (node == 0) return;
    }
  }

  /// Recompute every node's list from `counts`, children first: a node's k best are among its
  /// own term and its children's k best. Returns the work (a batch job, off the query path).
  Work rebuild(const std::vector<std::int64_t>& counts) {
    Work w;
    TopK merged(k_);
    for (std::size_t i = nodes_.size(); i-- > 0;) {  // breadth-first order reversed: children first
      const Node& n = nodes_[i];
      merged.clear();
      if (n.term != kNoTerm) merged.offer(n.term, counts, w);
      for (std::uint32_t c = 0; c < n.child_count; ++c)
        for (std::size_t j = 0; j < k_ && top_[(n.first_child + c) * k_ + j] != kNoTerm; ++j)
          merged.offer(top_[(n.first_child + c) * k_ + j], counts, w);
      ++w.nodes;
      std::fill_n(top_.begin() + static_cast<std::ptrdiff_t>(i * k_), k_, kNoTerm);
      std::copy(merged.best().begin(), merged.best().end(),
                top_.begin() + static_cast<std::ptrdiff_t>(i * k_));
    }
    return w;
  }

  std::size_t nodes() const { return nodes_.size(); }
  std::size_t k() const { return k_; }
  /// The trie's own bytes: nodes, parent links (for updates) and the cached lists.
  std::size_t bytes() const {
    return nodes_.size() * sizeof(Node) + (k_ > 0 ? parent_.size() * sizeof(std::uint32_t) : 0) +
           top_.size() * sizeof(TermId);
  }

 private:
  /// Move `t` up (or into) the cached list of `node`.
  void update_list(std::uint32_t node, TermId t, const std::vector<std::int64_t>& counts, Work& w) {
    ++w.nodes;
    TermId* list = &top_[node * k_];
    std::size_t at = 0;
    while (at < k_ && list[at] != kNoTerm && list[at] != t) ++at, ++w.comparisons;
    if (at == k_) {  // not listed: enters only if it beats the last one
      ++w.comparisons;
      if (!Terms::better(counts, t, list[k_ - 1])) return;
      at = k_ - 1;
    }
    list[at] = t;
    while (at > 0 &&
           (++w.comparisons, list[at - 1] == kNoTerm || Terms::better(counts, t, list[at - 1]))) {
      std::swap(list[at], list[at - 1]);
      --at;
    }
  }

  struct Node {
    char c;
    std::uint32_t first_child;
    std::uint32_t child_count;
    TermId term;  // the term ending here, or kNoTerm
  };

  std::size_t k_;
  std::vector<Node> nodes_;             // breadth-first; 0 is the root
  std::vector<std::uint32_t> parent_;   // by node
  std::vector<std::uint32_t> leaf_of_;  // the node where a term ends
  std::vector<TermId> top_;             // k per node, best first, kNoTerm padded
  std::vector<std::uint32_t> stack_;    // scratch for complete_by_walk
};

inline const char* const kSyllables[] = {
    "an", "ar", "ba", "be", "bo", "ca", "ce", "co", "da", "de", "di", "el", "en", "er",
    "fa", "fo", "ga", "ha", "he", "in", "is", "ka", "la", "le", "li", "lo", "ma", "me",
    "mi", "mo", "na", "ne", "no", "on", "or", "pa", "pe", "po", "ra", "re", "ri", "ro",
    "sa", "se", "si", "so", "ta", "te", "ti", "to", "un", "va", "ve", "wa", "za"};
inline constexpr std::uint64_t kSyllableCount = sizeof(kSyllables) / sizeof(kSyllables[0]);

/// `n` distinct pronounceable terms of 2 to 4 syllables, in popularity-rank order, and their
/// initial search counts: `searches` spread as Zipf(s) over the ranks.
inline Terms syllable_dictionary(std::size_t n, double searches, double s, Rng& rng) {
  std::vector<std::string> text;
  std::unordered_set<std::string> seen;
  text.reserve(n);
  while (text.size() < n) {
    std::string t;
    const std::uint64_t syllables = 2 + rng.below(3);
    for (std::uint64_t i = 0; i < syllables; ++i) t += kSyllables[rng.below(kSyllableCount)];
    if (seen.insert(t).second) text.push_back(std::move(t));
  }
  double harmonic = 0;
  for (std::size_t r = 1; r <= n; ++r) harmonic += std::pow(static_cast<double>(r), -s);
  std::vector<std::int64_t> counts(n);
  for (std::size_t r = 0; r < n; ++r)
    counts[r] =
        static_cast<std::int64_t>(searches * std::pow(static_cast<double>(r + 1), -s) / harmonic);
  return Terms(std::move(text), std::move(counts));
}

}  // namespace hldlab::typeahead
