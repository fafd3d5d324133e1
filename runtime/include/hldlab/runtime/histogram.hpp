/// @file histogram.hpp
/// @brief Log-linear latency histogram: 64 linear sub-buckets per power of two, so any value
/// is known to within 1/128 (0.8%) of itself. Single writer, lock-free readers.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace hldlab {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 6;             // 64 sub-buckets per octave
  static constexpr int kLinear = 2 << kSubBits;  // values below 128 are exact
  static constexpr int kBuckets = kLinear + (63 - kSubBits) * (1 << kSubBits);

  /// Record one value (ns, clamped at 0). Hot path: a clz, two relaxed loads and stores.
  void record(std::int64_t value) {
    if (value < 0) value = 0;
    bump(counts_[index_of(static_cast<std::uint64_t>(value))], 1);
    bump(count_, 1);
    bump(sum_, value);
    if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
  }

  std::int64_t count() const { return count_.load(std::memory_order_relaxed); }
  std::int64_t sum() const { return sum_.load(std::memory_order_relaxed); }
  std::int64_t max() const { return max_.load(std::memory_order_relaxed); }
  double mean() const { return count() ? static_cast<double>(sum()) / count() : 0.0; }

  /// Nearest-rank quantile (q in [0,1]): the midpoint of the bucket holding the ceil(q*n)-th
  /// smallest value, never above the exact maximum. 0 when empty.
  std::int64_t quantile(double q) const;

  /// Number of recorded values <= `bound` (ns), interpolated inside the bucket holding `bound`.
  double count_at_or_below(std::int64_t bound) const;

  /// Bucket index of a value, and the [low, high) range of a bucket.
  static int index_of(std::uint64_t v) {
    if (v < static_cast<std::uint64_t>(kLinear)) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits;                   // >= 1
    const int mantissa = static_cast<int>(v >> shift);  // in [64, 128)
    return kLinear + (shift - 1) * (1 << kSubBits) + (mantissa - (1 << kSubBits));
  }
  static std::uint64_t bucket_low(int index);
  static std::uint64_t bucket_high(int index);

  /// Add every value recorded in `other` (used to merge, not on the hot path).
  void merge(const LatencyHistogram& other);
  void reset();

 private:
  static void bump(std::atomic<std::int64_t>& a, std::int64_t d) {
    a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  std::array<std::atomic<std::int64_t>, kBuckets> counts_{};
  std::atomic<std::int64_t> count_{0}, sum_{0}, max_{0};
};

}  // namespace hldlab
