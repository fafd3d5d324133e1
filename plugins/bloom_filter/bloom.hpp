// The structures of the bloom_filter lesson, real and self-contained (the tests and the
// benchmark use them directly): usernames, a hash of their bytes, a Bloom filter, a counting
// Bloom filter and an exact open-addressing set of names. Every operation adds the work it
// did to a Work record, which the lesson turns into time through its cost model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "hldlab/sim.hpp"

namespace bloom {

using hldlab::Rng;

/// The work of one operation.
struct Work {
  std::uint64_t hashes = 0;    ///< passes of the hash function over a name's bytes
  std::uint64_t accesses = 0;  ///< random memory accesses: a bit or counter probe, a cache line
  std::uint64_t compares = 0;  ///< name comparisons
};

/// Usernames are at most 15 bytes (Twitter's limit), so the exact set stores them inline.
constexpr std::size_t kMaxName = 15;

/// The username of name id `id`: a short word and the id in decimal ("luna4711"). Letters
/// then digits, so two ids never share a name. Written into `out`; ids up to 10^10.
inline std::string_view username(std::uint64_t id, char (&out)[16]) {
  static constexpr const char* kWords[16] = {"ace",   "bolt", "cat",  "dino", "echo", "fox",
                                             "gamer", "hawk", "iris", "jade", "king", "luna",
                                             "max",   "nova", "orca", "pixel"};
  const char* word = kWords[Rng::hash(id) & 15];
  std::size_t n = std::strlen(word);
  std::memcpy(out, word, n);
  char digits[20];
  std::size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + id % 10);
    id /= 10;
  } while (id != 0);
  if (n + d > kMaxName) throw std::invalid_argument("name ids go up to 10^10 (15-byte names)");
  while (d > 0) out[n++] = digits[--d];
  return {out, n};
}

/// 64-bit hash of a name's bytes, 8 at a time through the splitmix64 finaliser, keyed by
/// `seed` (every seed is another hash function).
inline std::uint64_t hash_name(std::string_view name, std::uint64_t seed) {
  std::uint64_t h = seed ^ (name.size() * 0x9E3779B97F4A7C15ULL);
  for (std::size_t i = 0; i < name.size(); i += 8) {
    std::uint64_t chunk = 0;
    std::memcpy(&chunk, name.data() + i, std::min<std::size_t>(8, name.size() - i));
    h = Rng::hash(h ^ chunk);
  }
  return h;
}

/// Bits per key for a target false-positive rate p with the optimal number of hashes:
/// m/n = -ln p / (ln 2)^2 (9.6 bits for 1%).
inline double bits_per_key_for(double p) {
  return -std::log(p) / (std::log(2.0) * std::log(2.0));
}
/// The number of hashes that minimises the false-positive rate: k = (m/n) ln 2.
inline int optimal_hashes(double bits_per_key) {
  return std::max(1, static_cast<int>(std::lround(bits_per_key * std::log(2.0))));
}
/// The false-positive rate of a filter of m bits (or counters) and k hashes holding n names:
/// (1 - e^(-k n / m))^k.
inline double expected_fpr(double m, double k, double n) {
  return std::pow(1 - std::exp(-k * n / m), k);
}

/// The k positions of a name in a table of m cells: double hashing (Kirsch & Mitzenmacher
/// 2006), g_i = h1 + i h2, each mapped to [0, m) by a multiply-shift. One hash of the name.
class Positions {
 public:
  Positions(std::string_view name, std::uint64_t seed, std::uint64_t cells, Work& work)
      : h1_(hash_name(name, seed)), h2_(Rng::hash(h1_) | 1), cells_(cells) {
    ++work.hashes;
  }
  std::uint64_t operator[](int i) const {
    __extension__ using u128 = unsigned __int128;
    const std::uint64_t g = h1_ + static_cast<std::uint64_t>(i) * h2_;
    return static_cast<std::uint64_t>((static_cast<u128>(g) * cells_) >> 64);
  }

 private:
  std::uint64_t h1_, h2_, cells_;
};

/// @brief A Bloom filter (Bloom 1970): m bits, k positions per name. "No" is certain; "maybe"
/// is wrong with probability (1 - e^(-k n / m))^k. It cannot forget a name.
class BloomFilter {
 public:
  BloomFilter(std::uint64_t bits, int hashes, std::uint64_t seed)
      : words_((bits + 63) / 64, 0), bits_(bits), hashes_(hashes), seed_(seed) {
    if (bits == 0 || hashes < 1) throw std::invalid_argument("a Bloom filter needs m >= 1, k >= 1");
  }

  void add(std::string_view name, Work& work) {
    const Positions at(name, seed_, bits_, work);
    for (int i = 0; i < hashes_; ++i) {
      ++work.accesses;
      std::uint64_t& word = words_[at[i] / 64];
      const std::uint64_t mask = std::uint64_t{1} << (at[i] % 64);
      set_bits_ += (word & mask) == 0;
      word |= mask;
    }
  }
  /// False: the name was never added. True: it was, or all its bits are set by others.
  /// Stops at the first clear bit.
  bool might_contain(std::string_view name, Work& work) const {
    const Positions at(name, seed_, bits_, work);
    for (int i = 0; i < hashes_; ++i) {
      ++work.accesses;
      if ((words_[at[i] / 64] >> (at[i] % 64) & 1) == 0) return false;
    }
    return true;
  }
  /// The broken delete: clears the name's k bits, which other names may share. Those names
  /// are then reported absent (false negatives).
  void clear(std::string_view name, Work& work) {
    const Positions at(name, seed_, bits_, work);
    for (int i = 0; i < hashes_; ++i) {
      ++work.accesses;
      std::uint64_t& word = words_[at[i] / 64];
      const std::uint64_t mask = std::uint64_t{1} << (at[i] % 64);
      set_bits_ -= (word & mask) != 0;
      word &= ~mask;
    }
  }
  void reset() {
    std::fill(words_.begin(), words_.end(), 0);
    set_bits_ = 0;
  }

  std::uint64_t cells() const { return bits_; }
  int hashes() const { return hashes_; }
  std::size_t memory_bytes() const { return words_.size() * sizeof(std::uint64_t); }
  /// Share of the bits that are set.
  double fill() const { return static_cast<double>(set_bits_) / static_cast<double>(bits_); }

 private:
  std::vector<std::uint64_t> words_;
  std::uint64_t bits_;
  int hashes_;
  std::uint64_t seed_;
  std::uint64_t set_bits_ = 0;
};

/// @brief A counting Bloom filter (Fan et al. 2000): 4-bit counters instead of bits, so a
/// name can be removed by decrementing its k counters. A counter that reaches 15 stays there
/// (it can no longer be decremented safely); with k n / m near ln 2 that needs 15 names on one
/// counter, which practically never happens. Four times the memory of the plain filter.
class CountingBloomFilter {
 public:
  static constexpr std::uint8_t kSaturated = 15;

  CountingBloomFilter(std::uint64_t counters, int hashes, std::uint64_t seed)
      : nibbles_((counters + 1) / 2, 0), counters_(counters), hashes_(hashes), seed_(seed) {
    if (counters == 0 || hashes < 1)
      throw std::invalid_argument("a counting Bloom filter needs m >= 1, k >= 1");
  }

  void add(std::string_view name, Work& work) {
    const Positions at(name, seed_, counters_, work);
    for (int i = 0; i < hashes_; ++i) {
      ++work.accesses;
      const std::uint8_t c = counter(at[i]);
      if (c == 0) ++nonzero_;
      if (c < kSaturated) set_counter(at[i], c + 1);
    }
  }
  /// Remove a name that was added (removing one that was not corrupts the filter: the caller
  /// checks with the database first).
  void remove(std::string_view name, Work& work) {
    const Positions at(name, seed_, counters_, work);
    for (int i = 0; i < hashes_; ++i) {
      ++work.accesses;
      const std::uint8_t c = counter(at[i]);
      if (c == 0 || c == kSaturated) continue;
      set_counter(at[i], c - 1);
      if (c == 1) --nonzero_;
    }
  }
  bool might_contain(std::string_view name, Work& work) const {
    const Positions at(name, seed_, counters_, work);
    for (int i = 0; i < hashes_; ++i) {
      ++work.accesses;
      if (counter(at[i]) == 0) return false;
    }
    return true;
  }
  void reset() {
    std::fill(nibbles_.begin(), nibbles_.end(), 0);
    nonzero_ = 0;
  }

  std::uint8_t counter(std::uint64_t i) const {
    return static_cast<std::uint8_t>(nibbles_[i / 2] >> (i % 2 * 4) & 15);
  }
  std::uint64_t cells() const { return counters_; }
  int hashes() const { return hashes_; }
  std::size_t memory_bytes() const { return nibbles_.size(); }
  /// Share of the counters that are not zero.
  double fill() const { return static_cast<double>(nonzero_) / static_cast<double>(counters_); }

 private:
  void set_counter(std::uint64_t i, int value) {
    std::uint8_t& byte = nibbles_[i / 2];
    const int shift = static_cast<int>(i % 2 * 4);
    byte = static_cast<std::uint8_t>((byte & ~(15 << shift)) | (value << shift));
  }

  std::vector<std::uint8_t> nibbles_;  // two 4-bit counters per byte
  std::uint64_t counters_;
  int hashes_;
  std::uint64_t seed_;
  std::uint64_t nonzero_ = 0;
};

/// @brief An exact set of names: open addressing with linear probing, names stored inline in
/// 16-byte slots (4 per 64-byte cache line), at most 3/4 full, deletions leave tombstones.
/// A lookup costs one hash, one random access plus one per further cache line, and one
/// comparison per occupied slot it passes. Growing rehashes every name (and costs it).
class NameSet {
 public:
  explicit NameSet(std::uint64_t seed) : slots_(16), seed_(seed) {}

  bool contains(std::string_view name, Work& work) const {
    return find(name, hash_name(name, seed_), work).present;
  }
  /// False when the name is already in the set.
  bool insert(std::string_view name, Work& work) {
    if (name.empty() || name.size() > kMaxName)
      throw std::invalid_argument("a name has 1 to 15 bytes");
    const std::uint64_t h = hash_name(name, seed_);
    Found at = find(name, h, work);
    if (at.present) return false;
    if ((size_ + tombstones_ + 1) * 4 > slots_.size() * 3) {
      rehash(work);
      at = find(name, h, work);
    }
    place(at.slot, name);
    ++size_;
    return true;
  }
  /// False when the name is not in the set.
  bool erase(std::string_view name, Work& work) {
    const Found at = find(name, hash_name(name, seed_), work);
    if (!at.present) return false;
    slots_[at.slot].size = kTombstone;
    --size_;
    ++tombstones_;
    return true;
  }
  /// f(name) for every name, in slot order.
  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.size != kEmpty && s.size != kTombstone) f(std::string_view(s.bytes, s.size));
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }
  std::size_t memory_bytes() const { return slots_.size() * sizeof(Slot); }

 private:
  static constexpr std::uint8_t kEmpty = 0, kTombstone = 0xff;
  static constexpr std::size_t kSlotsPerLine = 4;
  struct Slot {
    char bytes[kMaxName];
    std::uint8_t size = kEmpty;  // 1..15: a name; kEmpty; kTombstone
  };
  static_assert(sizeof(Slot) == 16);

  struct Found {
    std::size_t slot;  // holding the name, else where to insert it
    bool present;
  };
  /// The slot holding `name`, or else the empty slot where the probe ended (the first
  /// tombstone passed, if any, so that insertions reuse it).
  Found find(std::string_view name, std::uint64_t h, Work& work) const {
    ++work.hashes;
    ++work.accesses;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = static_cast<std::size_t>(h >> 32) & mask;
    std::size_t reuse = slots_.size();
    for (;;) {
      const Slot& s = slots_[i];
      if (s.size == kEmpty) return {reuse < slots_.size() ? reuse : i, false};
      if (s.size == kTombstone) {
        if (reuse == slots_.size()) reuse = i;
      } else {
        ++work.compares;
        if (s.size == name.size() && std::memcmp(s.bytes, name.data(), name.size()) == 0)
          return {i, true};
      }
      i = (i + 1) & mask;
      if (i % kSlotsPerLine == 0) ++work.accesses;
    }
  }
  void place(std::size_t i, std::string_view name) {
    if (slots_[i].size == kTombstone) --tombstones_;
    std::memcpy(slots_[i].bytes, name.data(), name.size());
    slots_[i].size = static_cast<std::uint8_t>(name.size());
  }
  /// Twice the slots when more than half are live, else the same number without tombstones.
  void rehash(Work& work) {
    std::vector<Slot> old(size_ * 2 >= slots_.size() ? slots_.size() * 2 : slots_.size());
    old.swap(slots_);
    tombstones_ = 0;
    for (const Slot& s : old)
      if (s.size != kEmpty && s.size != kTombstone) {
        const std::string_view name(s.bytes, s.size);
        place(find(name, hash_name(name, seed_), work).slot, name);
      }
  }

  std::vector<Slot> slots_;  // a power of two
  std::uint64_t seed_;
  std::size_t size_ = 0, tombstones_ = 0;
};

}  // namespace bloom
