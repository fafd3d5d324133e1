// Cache eviction policies over pre-sized node arrays: FIFO, LRU, LFU and W-TinyLFU.
//
// Every policy keeps its entries in a node array sized once at construction and finds them
// through an open-addressing index, so a lookup, an insertion or an eviction allocates nothing.
// Header-only so that the unit tests and the benchmark use the very code the lesson runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab::caching {

constexpr std::uint32_t kNone = 0xFFFFFFFFu;

/// What the lesson stores per cached key (the value itself is modelled by its version).
struct Entry {
  std::uint32_t version = 0;  ///< version of the value held
  std::uint32_t dirty = 0;    ///< write-back: acknowledged writes not yet sent to the database
  Time expires = 0;           ///< 0: never
  Time loaded = 0;            ///< when the value entered the cache
};

/// The entry a policy pushed out to make room.
struct Evicted {
  bool any = false;
  std::uint64_t key = 0;
  Entry entry;
};

inline std::uint64_t next_pow2(std::uint64_t x) {
  std::uint64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

/// @brief Open-addressing map from a 64-bit key to a 32-bit value (linear probing,
/// backward-shift deletion). Grows by doubling when more than half full.
class KeyIndex {
 public:
  explicit KeyIndex(std::size_t expected = 16) {
    reset(next_pow2(std::max<std::size_t>(16, 2 * expected)));
  }

  std::uint32_t find(std::uint64_t key) const {
    for (std::size_t i = Rng::hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == kNone) return kNone;
      if (s.key == key) return s.value;
    }
  }
  /// Add `key` (must be absent).
  void insert(std::uint64_t key, std::uint32_t value) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    place(key, value);
    ++size_;
  }
  /// Change the value of a present key.
  void update(std::uint64_t key, std::uint32_t value) {
    for (std::size_t i = Rng::hash(key) & mask_;; i = (i + 1) & mask_)
      if (slots_[i].key == key && slots_[i].value != kNone) {
        slots_[i].value = value;
        return;
      }
  }
  void erase(std::uint64_t key) {
    std::size_t i = Rng::hash(key) & mask_;
    while (slots_[i].value != kNone && slots_[i].key != key) i = (i + 1) & mask_;
    if (slots_[i].value == kNone) return;
    --size_;
    // Backward shift: pull later entries of the run into the hole unless they would move
    // before their home slot.
    for (std::size_t j = (i + 1) & mask_; slots_[j].value != kNone; j = (j + 1) & mask_) {
      const std::size_t home = Rng::hash(slots_[j].key) & mask_;
      const bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (between) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i].value = kNone;
  }
  void clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    size_ = 0;
  }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return slots_.size() * sizeof(Slot); }

 private:
  struct Slot {
    std::uint64_t key = 0;
    std::uint32_t value = kNone;
  };
  void reset(std::size_t n) {
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    size_ = 0;
  }
  void place(std::uint64_t key, std::uint32_t value) {
    std::size_t i = Rng::hash(key) & mask_;
    while (slots_[i].value != kNone) i = (i + 1) & mask_;
    slots_[i] = {key, value};
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    const std::size_t n = size_;
    reset(old.size() * 2);
    for (const Slot& s : old)
      if (s.value != kNone) place(s.key, s.value);
    size_ = n;
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0, size_ = 0;
};

/// @brief A cache of at most capacity() keys with an eviction policy.
///
/// access() is one request for a key: it updates the policy's bookkeeping (recency,
/// frequency) and returns the entry on a hit, nullptr on a miss. After a miss the caller loads
/// the value and calls insert(), which makes room by evicting one entry when full.
class Cache {
 public:
  virtual ~Cache() = default;
  virtual Entry* access(std::uint64_t key) = 0;
  /// Add an absent key; reports the entry evicted to make room, if any.
  virtual Entry& insert(std::uint64_t key, Evicted& evicted) = 0;
  /// The entry without touching the policy's bookkeeping.
  virtual Entry* peek(std::uint64_t key) = 0;
  /// Remove a key (invalidation, expiry). Returns whether it was present.
  virtual bool erase(std::uint64_t key) = 0;
  /// Forget everything (the cache process crashed). The frequency history goes too.
  virtual void clear() = 0;
  virtual std::size_t size() const = 0;
  virtual std::size_t capacity() const = 0;
  /// Bytes of the data structures (nodes, index, sketch), excluding the object itself.
  virtual std::size_t memory_bytes() const = 0;
  /// Keys from the first to be evicted to the last (for tests and inspection; O(n)).
  virtual std::vector<std::uint64_t> eviction_order() const = 0;
};

/// @brief Nodes in circular doubly linked lists; list heads are sentinel nodes after the
/// `capacity` data nodes. Free nodes are chained through `next`.
class NodeLists {
 public:
  struct Node {
    std::uint64_t key = 0;
    std::uint32_t prev = kNone, next = kNone;
    Entry entry;
    std::uint32_t list = 0;  ///< which list the node is on (W-TinyLFU segment)
  };

  NodeLists(std::size_t capacity, std::uint32_t lists)
      : capacity_(capacity), nodes_(capacity + lists) {
    if (capacity < 1 || capacity > 0x7FFFFFFF)
      throw std::invalid_argument("cache capacity must be between 1 and 2^31 - 1, got " +
                                  std::to_string(capacity));
    reset(lists);
  }

  void reset(std::uint32_t lists) {
    for (std::uint32_t l = 0; l < lists; ++l) {
      const std::uint32_t s = sentinel(l);
      nodes_[s].prev = nodes_[s].next = s;
    }
    for (std::size_t i = 0; i < capacity_; ++i)
      nodes_[i].next = i + 1 < capacity_ ? static_cast<std::uint32_t>(i + 1) : kNone;
    free_ = 0;
  }
  std::uint32_t sentinel(std::uint32_t list) const {
    return static_cast<std::uint32_t>(capacity_) + list;
  }
  Node& operator[](std::uint32_t i) { return nodes_[i]; }
  const Node& operator[](std::uint32_t i) const { return nodes_[i]; }

  std::uint32_t allocate() {
    const std::uint32_t i = free_;
    free_ = nodes_[i].next;
    return i;
  }
  void release(std::uint32_t i) {
    nodes_[i].next = free_;
    free_ = i;
  }
  void unlink(std::uint32_t i) {
    Node& n = nodes_[i];
    nodes_[n.prev].next = n.next;
    nodes_[n.next].prev = n.prev;
  }
  /// Put node `i` at the most recent end (just before the sentinel) of `list`.
  void push_back(std::uint32_t list, std::uint32_t i) {
    const std::uint32_t s = sentinel(list);
    Node& n = nodes_[i];
    n.list = list;
    n.prev = nodes_[s].prev;
    n.next = s;
    nodes_[n.prev].next = i;
    nodes_[s].prev = i;
  }
  void move_to_back(std::uint32_t list, std::uint32_t i) {
    unlink(i);
    push_back(list, i);
  }
  /// The oldest node of `list` (kNone when empty).
  std::uint32_t front(std::uint32_t list) const {
    const std::uint32_t s = sentinel(list);
    return nodes_[s].next == s ? kNone : nodes_[s].next;
  }
  void append_keys(std::uint32_t list, std::vector<std::uint64_t>& out) const {
    const std::uint32_t s = sentinel(list);
    for (std::uint32_t i = nodes_[s].next; i != s; i = nodes_[i].next) out.push_back(nodes_[i].key);
  }
  std::size_t bytes() const { return nodes_.size() * sizeof(Node); }

 private:
  std::size_t capacity_;
  std::vector<Node> nodes_;
  std::uint32_t free_ = 0;
};

/// @brief FIFO (evict the oldest insertion; hits change nothing) or LRU (a hit moves the key
/// to the most recent end; evict the least recently used).
class ListCache final : public Cache {
 public:
  ListCache(std::size_t capacity, bool move_on_hit)
      : nodes_(capacity, 1), index_(capacity), capacity_(capacity), move_on_hit_(move_on_hit) {}

  Entry* access(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    if (i == kNone) return nullptr;
    if (move_on_hit_) nodes_.move_to_back(0, i);
    return &nodes_[i].entry;
  }
  Entry& insert(std::uint64_t key, Evicted& evicted) override {
    evicted.any = false;
    if (size_ == capacity_) {
      const std::uint32_t victim = nodes_.front(0);
      evicted = {true, nodes_[victim].key, nodes_[victim].entry};
      remove(victim);
    }
    const std::uint32_t i = nodes_.allocate();
    nodes_[i].key = key;
    nodes_[i].entry = Entry{};
    nodes_.push_back(0, i);
    index_.insert(key, i);
    ++size_;
    return nodes_[i].entry;
  }
  Entry* peek(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    return i == kNone ? nullptr : &nodes_[i].entry;
  }
  bool erase(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    if (i == kNone) return false;
    remove(i);
    return true;
  }
  void clear() override {
    nodes_.reset(1);
    index_.clear();
    size_ = 0;
  }
  std::size_t size() const override { return size_; }
  std::size_t capacity() const override { return capacity_; }
  std::size_t memory_bytes() const override { return nodes_.bytes() + index_.bytes(); }
  std::vector<std::uint64_t> eviction_order() const override {
    std::vector<std::uint64_t> out;
    nodes_.append_keys(0, out);
    return out;
  }

 private:
  void remove(std::uint32_t i) {
    index_.erase(nodes_[i].key);
    nodes_.unlink(i);
    nodes_.release(i);
    --size_;
  }
  NodeLists nodes_;
  KeyIndex index_;
  std::size_t capacity_, size_ = 0;
  bool move_on_hit_;
};

/// @brief LFU: evict the key with the fewest hits since it was inserted; among equals, the
/// least recently used. A binary min-heap on (frequency, last use).
class LfuCache final : public Cache {
 public:
  explicit LfuCache(std::size_t capacity)
      : nodes_(capacity), heap_(capacity), index_(capacity), capacity_(capacity) {
    if (capacity < 1 || capacity > 0x7FFFFFFF)
      throw std::invalid_argument("cache capacity must be between 1 and 2^31 - 1");
    clear();
  }

  Entry* access(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    if (i == kNone) return nullptr;
    ++nodes_[i].frequency;
    nodes_[i].last_use = ++clock_;
    sift_down(nodes_[i].heap_pos);  // its key only grew
    return &nodes_[i].entry;
  }
  Entry& insert(std::uint64_t key, Evicted& evicted) override {
    evicted.any = false;
    if (size_ == capacity_) {
      const std::uint32_t victim = heap_[0];
      evicted = {true, nodes_[victim].key, nodes_[victim].entry};
      remove(victim);
    }
    const std::uint32_t i = free_.back();
    free_.pop_back();
    Node& n = nodes_[i];
    n = Node{key, Entry{}, 1, static_cast<std::uint32_t>(size_), ++clock_};
    heap_[size_++] = i;
    sift_up(n.heap_pos);
    index_.insert(key, i);
    return n.entry;
  }
  Entry* peek(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    return i == kNone ? nullptr : &nodes_[i].entry;
  }
  bool erase(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    if (i == kNone) return false;
    remove(i);
    return true;
  }
  void clear() override {
    free_.clear();
    for (std::size_t i = capacity_; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
    index_.clear();
    size_ = 0;
  }
  std::size_t size() const override { return size_; }
  std::size_t capacity() const override { return capacity_; }
  std::size_t memory_bytes() const override {
    return nodes_.size() * sizeof(Node) + 2 * heap_.size() * sizeof(std::uint32_t) + index_.bytes();
  }
  std::vector<std::uint64_t> eviction_order() const override {
    std::vector<std::uint32_t> order(heap_.begin(),
                                     heap_.begin() + static_cast<std::ptrdiff_t>(size_));
    std::sort(order.begin(), order.end(),
              [this](std::uint32_t a, std::uint32_t b) { return less(a, b); });
    std::vector<std::uint64_t> out;
    for (std::uint32_t i : order) out.push_back(nodes_[i].key);
    return out;
  }
  /// Hits + 1 of a cached key (0 when absent), for tests.
  std::uint32_t frequency(std::uint64_t key) const {
    const std::uint32_t i = index_.find(key);
    return i == kNone ? 0 : nodes_[i].frequency;
  }

 private:
  struct Node {
    std::uint64_t key = 0;
    Entry entry;
    std::uint32_t frequency = 0, heap_pos = 0;
    std::uint64_t last_use = 0;
  };
  bool less(std::uint32_t a, std::uint32_t b) const {
    const Node &x = nodes_[a], &y = nodes_[b];
    return x.frequency != y.frequency ? x.frequency < y.frequency : x.last_use < y.last_use;
  }
  void place(std::size_t pos, std::uint32_t i) {
    heap_[pos] = i;
    nodes_[i].heap_pos = static_cast<std::uint32_t>(pos);
  }
  void sift_up(std::size_t pos) {
    const std::uint32_t i = heap_[pos];
    while (pos > 0 && less(i, heap_[(pos - 1) / 2])) {
      place(pos, heap_[(pos - 1) / 2]);
      pos = (pos - 1) / 2;
    }
    place(pos, i);
  }
  void sift_down(std::size_t pos) {
    const std::uint32_t i = heap_[pos];
    for (;;) {
      std::size_t child = 2 * pos + 1;
      if (child >= size_) break;
      if (child + 1 < size_ && less(heap_[child + 1], heap_[child])) ++child;
      if (!less(heap_[child], i)) break;
      place(pos, heap_[child]);
      pos = child;
    }
    place(pos, i);
  }
  void remove(std::uint32_t i) {
    index_.erase(nodes_[i].key);
    const std::size_t pos = nodes_[i].heap_pos;
    const std::uint32_t last = heap_[--size_];
    if (pos < size_) {
      place(pos, last);
      sift_down(pos);
      sift_up(nodes_[last].heap_pos);
    }
    free_.push_back(i);
  }
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> heap_, free_;
  KeyIndex index_;
  std::size_t capacity_, size_ = 0;
  std::uint64_t clock_ = 0;
};

/// @brief TinyLFU's frequency estimate: a count-min sketch of 4-bit counters (depth 4) behind a
/// doorkeeper Bloom filter. A key's first occurrence in a period only sets its doorkeeper bits;
/// later ones increment the sketch. After `sample` recorded accesses every counter is halved
/// and the doorkeeper cleared, so the estimate follows the recent past.
///
/// Each row has 4 x capacity counters (Caffeine's sizing): a period spreads 10 x capacity
/// accesses over them, about 2.5 per counter. With capacity counters per row (10 per counter)
/// the collisions lifted cold keys to the estimates of warm ones and the admission decisions
/// became noise: the hit ratio on Zipf varied by 3 points from one trace to the next.
class FrequencySketch {
 public:
  explicit FrequencySketch(std::size_t capacity)
      : width_(next_pow2(std::max<std::size_t>(16, 4 * capacity))),
        counters_(4 * width_),
        doorkeeper_(next_pow2(std::max<std::size_t>(64, 8 * capacity)) / 64),
        sample_(10 * std::max<std::size_t>(1, capacity)) {}

  void record(std::uint64_t key) {
    const std::uint64_t h = Rng::hash(key);
    if (!doorkeeper_contains(h)) {
      doorkeeper_add(h);
    } else {
      for (std::size_t row = 0; row < 4; ++row) {
        std::uint8_t& c = counters_[row * width_ + slot(h, row)];
        if (c < 15) ++c;
      }
    }
    if (++additions_ >= sample_) age();
  }
  std::uint32_t estimate(std::uint64_t key) const {
    const std::uint64_t h = Rng::hash(key);
    std::uint32_t least = 15;
    for (std::size_t row = 0; row < 4; ++row)
      least = std::min<std::uint32_t>(least, counters_[row * width_ + slot(h, row)]);
    return least + (doorkeeper_contains(h) ? 1 : 0);
  }
  void clear() {
    std::fill(counters_.begin(), counters_.end(), 0);
    std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
    additions_ = 0;
  }
  std::size_t bytes() const { return counters_.size() + doorkeeper_.size() * 8; }
  std::uint64_t resets() const { return resets_; }

 private:
  std::size_t slot(std::uint64_t h, std::size_t row) const {
    const std::uint64_t h1 = h & 0xFFFFFFFFu, h2 = (h >> 32) | 1;
    return static_cast<std::size_t>((h1 + row * h2) & (width_ - 1));
  }
  /// The doorkeeper's two bits for hash `h` (its size is a power of two: a mask, no division).
  std::pair<std::size_t, std::size_t> doorkeeper_bits(std::uint64_t h) const {
    const std::size_t mask = doorkeeper_.size() * 64 - 1;
    return {h & mask, (h >> 32) & mask};
  }
  bool doorkeeper_contains(std::uint64_t h) const {
    const auto [a, b] = doorkeeper_bits(h);
    return (doorkeeper_[a / 64] >> (a % 64) & 1) && (doorkeeper_[b / 64] >> (b % 64) & 1);
  }
  void doorkeeper_add(std::uint64_t h) {
    const auto [a, b] = doorkeeper_bits(h);
    doorkeeper_[a / 64] |= std::uint64_t{1} << (a % 64);
    doorkeeper_[b / 64] |= std::uint64_t{1} << (b % 64);
  }
  void age() {
    for (std::uint8_t& c : counters_) c = static_cast<std::uint8_t>(c >> 1);
    std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
    additions_ /= 2;
    ++resets_;
  }
  std::size_t width_;
  std::vector<std::uint8_t> counters_;
  std::vector<std::uint64_t> doorkeeper_;
  std::size_t sample_, additions_ = 0;
  std::uint64_t resets_ = 0;
};

/// @brief W-TinyLFU (Einziger, Friedman, Manes 2017; Caffeine): a small LRU window admits new
/// keys; the main area is a segmented LRU (probation, protected). When the window overflows,
/// its oldest key (the candidate) enters the main area only if the sketch says it is more
/// frequent than the main area's victim (probation's oldest); otherwise the candidate goes.
class WTinyLfuCache final : public Cache {
 public:
  enum Segment : std::uint32_t { window = 0, probation = 1, protected_ = 2 };

  WTinyLfuCache(std::size_t capacity, double window_share = 0.01)
      // One spare node: the new key enters the window before the candidate is judged.
      : nodes_(capacity + 1, 3), index_(capacity + 1), sketch_(capacity), capacity_(capacity) {
    if (!(window_share > 0 && window_share < 1))
      throw std::invalid_argument("W-TinyLFU window share must be in (0, 1)");
    window_max_ = std::max<std::size_t>(1, static_cast<std::size_t>(window_share * capacity));
    window_max_ = std::min(window_max_, capacity);
    main_max_ = capacity - window_max_;
    protected_max_ = static_cast<std::size_t>(0.8 * static_cast<double>(main_max_));
  }

  Entry* access(std::uint64_t key) override {
    sketch_.record(key);
    const std::uint32_t i = index_.find(key);
    if (i == kNone) return nullptr;
    switch (nodes_[i].list) {
      case window:
        nodes_.move_to_back(window, i);
        break;
      case probation:  // second hit: promote, demoting protected's oldest if it overflows
        nodes_.move_to_back(protected_, i);
        --size_[probation];
        if (++size_[protected_] > protected_max_) {
          nodes_.move_to_back(probation, nodes_.front(protected_));
          --size_[protected_];
          ++size_[probation];
        }
        break;
      default:
        nodes_.move_to_back(protected_, i);
        break;
    }
    return &nodes_[i].entry;
  }
  Entry& insert(std::uint64_t key, Evicted& evicted) override {
    evicted.any = false;
    const std::uint32_t i = nodes_.allocate();
    nodes_[i].key = key;
    nodes_[i].entry = Entry{};
    nodes_.push_back(window, i);
    index_.insert(key, i);
    if (++size_[window] > window_max_) {
      const std::uint32_t candidate = nodes_.front(window);
      --size_[window];
      if (size_[probation] + size_[protected_] < main_max_) {
        nodes_.move_to_back(probation, candidate);
        ++size_[probation];
      } else {
        std::uint32_t victim = nodes_.front(probation);
        if (victim == kNone) victim = nodes_.front(protected_);
        if (victim != kNone &&
            sketch_.estimate(nodes_[candidate].key) > sketch_.estimate(nodes_[victim].key)) {
          --size_[nodes_[victim].list];
          evict(victim, evicted);
          nodes_.move_to_back(probation, candidate);
          ++size_[probation];
        } else {
          evict(candidate, evicted);
        }
      }
    }
    return nodes_[i].entry;
  }
  Entry* peek(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    return i == kNone ? nullptr : &nodes_[i].entry;
  }
  bool erase(std::uint64_t key) override {
    const std::uint32_t i = index_.find(key);
    if (i == kNone) return false;
    --size_[nodes_[i].list];
    index_.erase(key);
    nodes_.unlink(i);
    nodes_.release(i);
    return true;
  }
  void clear() override {
    nodes_.reset(3);
    index_.clear();
    sketch_.clear();
    size_[0] = size_[1] = size_[2] = 0;
  }
  std::size_t size() const override { return size_[0] + size_[1] + size_[2]; }
  std::size_t capacity() const override { return capacity_; }
  std::size_t memory_bytes() const override {
    return nodes_.bytes() + index_.bytes() + sketch_.bytes();
  }
  /// Window candidates first (they are judged first), then probation, then protected.
  std::vector<std::uint64_t> eviction_order() const override {
    std::vector<std::uint64_t> out;
    for (std::uint32_t l : {window, probation, protected_}) nodes_.append_keys(l, out);
    return out;
  }
  /// The segment holding `key`, or -1 when absent (for tests).
  int segment(std::uint64_t key) const {
    const std::uint32_t i = index_.find(key);
    return i == kNone ? -1 : static_cast<int>(nodes_[i].list);
  }
  const FrequencySketch& sketch() const { return sketch_; }

 private:
  void evict(std::uint32_t i, Evicted& evicted) {
    evicted = {true, nodes_[i].key, nodes_[i].entry};
    index_.erase(nodes_[i].key);
    nodes_.unlink(i);
    nodes_.release(i);
  }
  NodeLists nodes_;
  KeyIndex index_;
  FrequencySketch sketch_;
  std::size_t capacity_, window_max_ = 1, main_max_ = 0, protected_max_ = 0;
  std::size_t size_[3] = {0, 0, 0};
};

}  // namespace hldlab::caching
