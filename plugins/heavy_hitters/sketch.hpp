// The structures of the heavy_hitters lesson, real and self-contained (the tests and the
// benchmark use them directly): a count-min sketch (standard or conservative update), a
// top-k min-heap with a hash index, and an exact hash map of counts. Counts are weights: 1 per
// event, or a forward-decayed weight 2^((t - landmark) / half_life) for "trending now".
// Every operation adds the work it did to a Work record, which the lesson turns into time
// through its cost model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "hldlab/sim.hpp"

namespace sketch {

using hldlab::Rng;

/// The work of one operation.
struct Work {
  std::uint64_t hashes = 0;    ///< hash evaluations
  std::uint64_t accesses = 0;  ///< random memory accesses (a counter, a slot's cache line)
  std::uint64_t compares = 0;  ///< comparisons of counts or keys
};

/// @brief One row's hash, from a pairwise-independent family (Carter & Wegman 1979):
/// ((a x + b) mod p) mod w with p = 2^61 - 1 and random a != 0, b. The count-min bounds
/// assume exactly this independence.
class RowHash {
 public:
  static constexpr std::uint64_t kPrime = (std::uint64_t{1} << 61) - 1;
  explicit RowHash(Rng& rng) : a_(1 + rng.below(kPrime - 1)), b_(rng.below(kPrime)) {}
  std::uint64_t operator()(std::uint64_t key, std::uint64_t width) const {
    __extension__ using u128 = unsigned __int128;
    const u128 x = static_cast<u128>(a_) * (key % kPrime) + b_;
    std::uint64_t r = static_cast<std::uint64_t>(x & kPrime) + static_cast<std::uint64_t>(x >> 61);
    r = (r & kPrime) + (r >> 61);
    if (r >= kPrime) r -= kPrime;
    return r % width;
  }

 private:
  std::uint64_t a_, b_;
};

/// @brief Count-min sketch (Cormode & Muthukrishnan 2005): d rows of w counters; an event adds
/// its weight to one counter per row, the estimate is the smallest of the key's d counters.
/// It never underestimates; with total weight N, estimate - count <= (e / w) N with
/// probability at least 1 - e^-d. Conservative update (Estan & Varghese 2002) raises only
/// the counters below the new estimate: never higher than the standard update, still never
/// below the count.
template <class Counter>
class CountMin {
 public:
  CountMin(std::uint64_t width, int depth, Rng& rng)
      : counters_(width * static_cast<std::uint64_t>(depth), 0), width_(width), depth_(depth) {
    if (width == 0 || depth < 1 || depth > kMaxDepth)
      throw std::invalid_argument("count-min needs w >= 1 and 1 <= d <= 32");
    for (int j = 0; j < depth; ++j) rows_.emplace_back(rng);
  }

  /// Add `weight` to `key`; returns its new estimate.
  Counter add(std::uint64_t key, Counter weight, bool conservative, Work& work) {
    work.hashes += static_cast<std::uint64_t>(depth_);
    work.accesses += static_cast<std::uint64_t>(depth_);
    std::uint64_t cell[kMaxDepth];
    for (int j = 0; j < depth_; ++j) cell[j] = index(j, key);
    if (!conservative) {
      Counter estimate = counters_[cell[0]] += weight;
      for (int j = 1; j < depth_; ++j) {
        ++work.compares;
        estimate = std::min(estimate, counters_[cell[j]] += weight);
      }
      return estimate;
    }
    Counter least = counters_[cell[0]];
    for (int j = 1; j < depth_; ++j) {
      ++work.compares;
      least = std::min(least, counters_[cell[j]]);
    }
    const Counter target = least + weight;
    for (int j = 0; j < depth_; ++j) {
      ++work.compares;
      counters_[cell[j]] = std::max(counters_[cell[j]], target);
    }
    return target;
  }
  Counter estimate(std::uint64_t key, Work& work) const {
    work.hashes += static_cast<std::uint64_t>(depth_);
    work.accesses += static_cast<std::uint64_t>(depth_);
    Counter least = counters_[index(0, key)];
    for (int j = 1; j < depth_; ++j) {
      ++work.compares;
      least = std::min(least, counters_[index(j, key)]);
    }
    return least;
  }
  /// The counter of `key` in row `j` alone (what a sketch of depth 1 would answer).
  Counter row_estimate(int j, std::uint64_t key) const { return counters_[index(j, key)]; }
  /// Multiply every counter (moving the landmark of forward decay): a pass over w d counters.
  void scale(double factor, Work& work) {
    work.compares += counters_.size();
    for (Counter& c : counters_) c = static_cast<Counter>(c * factor);
  }

  std::uint64_t width() const { return width_; }
  int depth() const { return depth_; }
  std::size_t memory_bytes() const { return counters_.size() * sizeof(Counter); }
  /// The error bound's epsilon = e / w and its failure probability delta = e^-d.
  double epsilon() const { return std::exp(1.0) / static_cast<double>(width_); }
  double delta() const { return std::exp(-static_cast<double>(depth_)); }

  static constexpr int kMaxDepth = 32;

 private:
  std::uint64_t index(int j, std::uint64_t key) const {
    return static_cast<std::uint64_t>(j) * width_ + rows_[static_cast<std::size_t>(j)](key, width_);
  }

  std::vector<Counter> counters_;  // row j at [j w, (j + 1) w)
  std::vector<RowHash> rows_;
  std::uint64_t width_;
  int depth_;
};

/// One key and its count.
struct Counted {
  std::uint64_t key = 0;
  double count = 0;
};

/// Descending by count, then ascending by key: the order of a top-k answer.
inline bool ranks_before(const Counted& a, const Counted& b) {
  return a.count > b.count || (a.count == b.count && a.key < b.key);
}

/// @brief The k keys with the largest estimates seen so far: a min-heap by count (its root is
/// the smallest of them, the one to evict) with an open-addressing index from key to heap
/// position. Offering a key costs an index probe, then a sift of O(log k) comparisons.
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) {
    if (k == 0) throw std::invalid_argument("top-k needs k >= 1");
    heap_.reserve(k);
    std::size_t slots = 4;
    while (slots < 2 * k) slots *= 2;
    index_.assign(slots, kFree);
  }

  /// `key` now has estimate `count` (estimates only grow): update it, or let it in if it beats
  /// the smallest of the k.
  void offer(std::uint64_t key, double count, Work& work) {
    ++work.hashes;
    ++work.accesses;
    const std::size_t slot = find(key, work);
    if (index_[slot] != kFree) {
      const std::uint32_t at = index_[slot];
      heap_[at].count = count;
      sift_down(at, work);
      return;
    }
    if (heap_.size() < k_) {
      heap_.push_back({key, count});
      index_[slot] = static_cast<std::uint32_t>(heap_.size() - 1);
      sift_up(heap_.size() - 1, work);
      return;
    }
    ++work.compares;
    if (!ranks_before(Counted{key, count}, heap_[0])) return;
    erase_index(heap_[0].key, work);
    heap_[0] = {key, count};
    index_[find(key, work)] = 0;
    sift_down(0, work);
  }
  /// The keys, best first, into `out`: a sort of k entries.
  void sorted(std::vector<Counted>& out, Work& work) const {
    out.assign(heap_.begin(), heap_.end());
    std::sort(out.begin(), out.end(), [&work](const Counted& a, const Counted& b) {
      ++work.compares;
      return ranks_before(a, b);
    });
  }
  void scale(double factor) {
    for (Counted& c : heap_) c.count *= factor;
  }
  std::size_t size() const { return heap_.size(); }
  std::size_t memory_bytes() const {
    return heap_.capacity() * sizeof(Counted) + index_.size() * sizeof(std::uint32_t);
  }

 private:
  static constexpr std::uint32_t kFree = ~std::uint32_t{0};

  std::size_t home(std::uint64_t key) const {
    return static_cast<std::size_t>(Rng::hash(key)) & (index_.size() - 1);
  }
  /// The index slot of `key`, or the free slot where it would go.
  std::size_t find(std::uint64_t key, Work& work) const {
    std::size_t i = home(key);
    while (index_[i] != kFree) {
      ++work.compares;
      if (heap_[index_[i]].key == key) return i;
      i = (i + 1) & (index_.size() - 1);
    }
    return i;
  }
  /// Remove `key` from the index: backward-shift deletion (no tombstones).
  void erase_index(std::uint64_t key, Work& work) {
    const std::size_t mask = index_.size() - 1;
    std::size_t hole = find(key, work);
    index_[hole] = kFree;
    for (std::size_t i = (hole + 1) & mask; index_[i] != kFree; i = (i + 1) & mask) {
      const std::size_t h = home(heap_[index_[i]].key);
      // Move the entry into the hole unless its home lies cyclically in (hole, i].
      if (((i - h) & mask) >= ((i - hole) & mask)) {
        index_[hole] = index_[i];
        index_[i] = kFree;
        hole = i;
      }
    }
  }
  /// Swap two heap entries and their index positions (two index probes).
  void swap_entries(std::size_t a, std::size_t b, Work& work) {
    const std::size_t slot_a = find(heap_[a].key, work), slot_b = find(heap_[b].key, work);
    std::swap(heap_[a], heap_[b]);
    index_[slot_a] = static_cast<std::uint32_t>(b);
    index_[slot_b] = static_cast<std::uint32_t>(a);
  }
  void sift_up(std::size_t i, Work& work) {
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      ++work.compares;
      if (!ranks_before(heap_[parent], heap_[i])) break;
      swap_entries(i, parent, work);
      i = parent;
    }
  }
  void sift_down(std::size_t i, Work& work) {
    for (;;) {
      std::size_t smallest = i;
      for (std::size_t c = 2 * i + 1; c <= 2 * i + 2 && c < heap_.size(); ++c) {
        ++work.compares;
        if (ranks_before(heap_[smallest], heap_[c])) smallest = c;
      }
      if (smallest == i) return;
      swap_entries(i, smallest, work);
      i = smallest;
    }
  }

  std::size_t k_;
  std::vector<Counted> heap_;         // min-heap: heap_[0] ranks after every other entry
  std::vector<std::uint32_t> index_;  // key -> position in heap_, linear probing
};

/// @brief An exact map from key to count: open addressing with linear probing, 16-byte slots
/// (key, count; 4 per cache line), at most 3/4 full. An update costs one hash, one random
/// access plus one per further cache line, one comparison per occupied slot passed; growing
/// rehashes every key (and costs it). Its top k is a scan of every key through a k-heap.
class ExactCounts {
 public:
  ExactCounts() : slots_(16) {}

  /// Add `weight` to `key`; returns its new count.
  double add(std::uint64_t key, double weight, Work& work) {
    std::size_t i = find(key, work);
    if (!slots_[i].used) {
      if ((size_ + 1) * 4 > slots_.size() * 3) {
        grow(work);
        i = find(key, work);
      }
      slots_[i] = {key, 0, true};
      ++size_;
    }
    return slots_[i].count += weight;
  }
  double count(std::uint64_t key) const {
    Work ignored;
    const std::size_t i = find(key, ignored);
    return slots_[i].used ? slots_[i].count : 0;
  }
  /// The k largest counts, best first, into `best`: one pass over every slot, keeping the
  /// best k in a heap whose front is the worst of them (O(n log k) comparisons).
  void top(std::size_t k, std::vector<Counted>& best, Work& work) const {
    best.clear();
    auto better = [&work](const Counted& a, const Counted& b) {
      ++work.compares;
      return ranks_before(a, b);
    };
    for (const Slot& s : slots_) {
      ++work.compares;
      if (!s.used) continue;
      const Counted c{s.key, s.count};
      if (best.size() < k) {
        best.push_back(c);
        std::push_heap(best.begin(), best.end(), better);
      } else if (better(c, best.front())) {
        std::pop_heap(best.begin(), best.end(), better);
        best.back() = c;
        std::push_heap(best.begin(), best.end(), better);
      }
    }
    std::sort_heap(best.begin(), best.end(), better);
  }
  /// f(key, count) for every key.
  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.used) f(s.key, s.count);
  }
  void scale(double factor, Work& work) {
    work.compares += slots_.size();
    for (Slot& s : slots_) s.count *= factor;
  }
  std::size_t size() const { return size_; }
  std::size_t memory_bytes() const {
    return slots_.size() * (sizeof(std::uint64_t) + sizeof(double));
  }

 private:
  struct Slot {
    std::uint64_t key = 0;
    double count = 0;
    bool used = false;  // (a real table keeps this in a bit of the key; not counted in memory)
  };
  static constexpr std::size_t kSlotsPerLine = 4;

  std::size_t find(std::uint64_t key, Work& work) const {
    ++work.hashes;
    ++work.accesses;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = static_cast<std::size_t>(Rng::hash(key) >> 32) & mask;
    while (slots_[i].used) {
      ++work.compares;
      if (slots_[i].key == key) return i;
      i = (i + 1) & mask;
      if (i % kSlotsPerLine == 0) ++work.accesses;
    }
    return i;
  }
  void grow(Work& work) {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old)
      if (s.used) slots_[find(s.key, work)] = s;
  }

  std::vector<Slot> slots_;  // a power of two
  std::size_t size_ = 0;
};

}  // namespace sketch
