// The structures of the hyperloglog lesson, real and self-contained (the tests and the
// benchmark use them directly): HyperLogLog with its small-range correction, and an exact
// set of 64-bit visitor ids. Every operation adds the work it did to a Work record, which the
// lesson turns into time through its cost model.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "hldlab/sim.hpp"

namespace hll {

/// The work of one operation.
struct Work {
  std::uint64_t hashes = 0;    ///< hashes of a visitor id
  std::uint64_t accesses = 0;  ///< random memory accesses (a register, a cache line of slots)
  std::uint64_t compares = 0;  ///< id comparisons in the exact set
  std::uint64_t scanned = 0;   ///< registers read in a sequential pass (merge, estimate)
};

/// @brief HyperLogLog (Flajolet, Fusy, Gandouet & Meunier 2007) on 64-bit hashes: the first p
/// bits of a hash pick one of m = 2^p registers, which keeps the largest "position of the
/// first 1 bit" of the remaining bits seen. The estimate alpha_m m^2 / sum 2^-M[j] has a
/// relative standard error of 1.04 / sqrt(m), whatever the count, with m bytes (Redis packs
/// the registers in 6 bits: 12 KiB for m = 2^14).
class HyperLogLog {
 public:
  explicit HyperLogLog(int precision) : registers_(std::size_t{1} << precision, 0), p_(precision) {
    if (precision < 4 || precision > 18)
      throw std::invalid_argument("HyperLogLog precision must be in [4, 18]");
  }

  /// Add a visitor by its (already computed) 64-bit hash: one register access.
  void add_hash(std::uint64_t h, Work& work) {
    ++work.accesses;
    const std::uint64_t rest = h << p_;  // the bits after the register index
    const int rank = rest == 0 ? 64 - p_ + 1 : __builtin_clzll(rest) + 1;
    std::uint8_t& r = registers_[h >> (64 - p_)];
    if (rank > r) r = static_cast<std::uint8_t>(rank);
  }
  /// Register-wise max: the registers of one HyperLogLog fed both streams. A visitor in both
  /// counts once.
  void merge(const HyperLogLog& other, Work& work) {
    if (other.p_ != p_) throw std::invalid_argument("merging HyperLogLogs of different sizes");
    work.scanned += registers_.size();
    for (std::size_t j = 0; j < registers_.size(); ++j)
      registers_[j] = std::max(registers_[j], other.registers_[j]);
  }
  void clear() { std::fill(registers_.begin(), registers_.end(), 0); }
  /// The same sketch with 2^precision registers (precision <= p): the bits of an index
  /// beyond the first `precision` become the first bits of the rank. Exactly the sketch of
  /// that size fed the same hashes (how a sketch is shrunk to merge with a smaller one).
  HyperLogLog folded(int precision) const {
    if (precision > p_) throw std::invalid_argument("a sketch folds to a lower precision only");
    HyperLogLog out(precision);
    const int shift = p_ - precision;
    for (std::size_t j = 0; j < registers_.size(); ++j) {
      if (registers_[j] == 0) continue;
      const std::size_t moved = j & ((std::size_t{1} << shift) - 1);  // now rank bits
      const int rank = moved == 0 ? registers_[j] + shift : shift - (63 - __builtin_clzll(moved));
      std::uint8_t& r = out.registers_[j >> shift];
      if (rank > r) r = static_cast<std::uint8_t>(rank);
    }
    return out;
  }

  /// The raw estimate alpha_m m^2 / sum_j 2^-M[j]: biased upwards for counts below ~2.5 m
  /// (with no visitor at all it says alpha_m m).
  double raw_estimate(Work& work) const {
    work.scanned += registers_.size();
    double sum = 0;
    for (std::uint8_t r : registers_) sum += kInversePowers[r];
    const double m = static_cast<double>(registers_.size());
    return alpha(registers_.size()) * m * m / sum;
  }
  /// The estimate with the small-range correction: below 2.5 m, when some registers are still
  /// zero, linear counting m ln(m / zeros) (Whang et al. 1990) is used instead.
  double estimate(Work& work) const {
    const double raw = raw_estimate(work);
    const double m = static_cast<double>(registers_.size());
    if (raw > 2.5 * m) return raw;
    const auto zeros = static_cast<double>(zero_registers());
    return zeros > 0 ? m * std::log(m / zeros) : raw;
  }

  std::size_t zero_registers() const {
    return static_cast<std::size_t>(std::count(registers_.begin(), registers_.end(), 0));
  }
  std::size_t registers() const { return registers_.size(); }
  std::uint8_t register_value(std::size_t j) const { return registers_[j]; }
  std::size_t memory_bytes() const { return registers_.size(); }
  bool operator==(const HyperLogLog& o) const { return registers_ == o.registers_; }

  /// The bias-correction constant alpha_m of the paper.
  static double alpha(std::size_t m) {
    if (m == 16) return 0.673;
    if (m == 32) return 0.697;
    if (m == 64) return 0.709;
    return 0.7213 / (1 + 1.079 / static_cast<double>(m));
  }
  /// The relative standard error 1.04 / sqrt(m).
  static double standard_error(std::size_t m) { return 1.04 / std::sqrt(static_cast<double>(m)); }

 private:
  /// 2^-r for every rank a register can hold (at most 64 - 4 + 1).
  static constexpr auto kInversePowers = [] {
    std::array<double, 64> table{};
    double x = 1;
    for (double& t : table) t = x, x /= 2;
    return table;
  }();

  std::vector<std::uint8_t> registers_;
  int p_;
};

/// @brief An exact set of 64-bit ids: open addressing with linear probing, 8-byte slots (8
/// per cache line), at most 3/4 full; the size is the exact distinct count. An insertion costs
/// one hash, one random access plus one per further cache line, one comparison per occupied
/// slot passed; growing rehashes every id (and costs it).
class IdSet {
 public:
  explicit IdSet(std::uint64_t seed) : slots_(16, kEmpty), seed_(seed) {}

  /// False when the id was already there.
  bool insert(std::uint64_t id, Work& work) {
    if (id == kEmpty) throw std::invalid_argument("IdSet cannot hold the id 2^64 - 1");
    std::size_t i = find(id, work);
    if (slots_[i] == id) return false;
    if ((size_ + 1) * 4 > slots_.size() * 3) {
      grow(work);
      i = find(id, work);
    }
    slots_[i] = id;
    ++size_;
    return true;
  }
  bool contains(std::uint64_t id, Work& work) const { return slots_[find(id, work)] == id; }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }
  std::size_t memory_bytes() const { return slots_.size() * sizeof(std::uint64_t); }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  static constexpr std::size_t kSlotsPerLine = 8;

  /// The slot holding `id`, or the empty slot where the probe ended.
  std::size_t find(std::uint64_t id, Work& work) const {
    ++work.hashes;
    ++work.accesses;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = static_cast<std::size_t>(hldlab::Rng::hash(id ^ seed_) >> 32) & mask;
    for (;;) {
      if (slots_[i] == kEmpty) return i;
      ++work.compares;
      if (slots_[i] == id) return i;
      i = (i + 1) & mask;
      if (i % kSlotsPerLine == 0) ++work.accesses;
    }
  }
  void grow(Work& work) {
    std::vector<std::uint64_t> old(slots_.size() * 2, kEmpty);
    old.swap(slots_);
    for (std::uint64_t id : old)
      if (id != kEmpty) slots_[find(id, work)] = id;
  }

  std::vector<std::uint64_t> slots_;  // a power of two
  std::uint64_t seed_;
  std::size_t size_ = 0;
};

}  // namespace hll
