/// @file histogram.hpp
/// @brief Histogram: log-linear buckets (64 linear sub-buckets per power of two), so any
/// recorded value is known to within 1/128 (0.8%) of itself. The one quantile definition of
/// hldlab: the runtime's latency figures and lessons' own distributions use it alike.
///
/// @code
///   Histogram waits;                  // in the System
///   waits.record(ctx.now() - queued);  // nanoseconds, counts, sizes: any value >= 0
///   return {{"wait_p99", to_seconds(waits.quantile(0.99))}};
/// @endcode
///
/// Single writer; readers on other threads (a metrics scrape) see relaxed, possibly slightly
/// stale values. Recording costs a clz and a few relaxed loads and stores: no lock, no
/// allocation. It takes about 30 KB.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>

namespace hldlab {

class Histogram {
 public:
  static constexpr int kSubBits = 6;             ///< 64 sub-buckets per octave
  static constexpr int kLinear = 2 << kSubBits;  ///< values below 128 are exact
  static constexpr int kBuckets = kLinear + (63 - kSubBits) * (1 << kSubBits);

  /// Record `value` (clamped at 0) `times` times.
  void record(std::int64_t value, std::int64_t times = 1) {
    if (value < 0) value = 0;
    record_in(index_of(static_cast<std::uint64_t>(value)), value, times);
  }
  /// record() when the bucket index of `value` (>= 0) is already known (several histograms).
  void record_in(int index, std::int64_t value, std::int64_t times = 1) {
    bump(counts_[index], times);
    bump(count_, times);
    sum_.store(sum_.load(std::memory_order_relaxed) + static_cast<double>(value) * times,
               std::memory_order_relaxed);
    if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
  }

  std::int64_t count() const { return count_.load(std::memory_order_relaxed); }
  /// Sum of the values, as a double: it cannot overflow (a mean stays right over any run).
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  std::int64_t max() const { return max_.load(std::memory_order_relaxed); }
  double mean() const { return count() ? sum() / static_cast<double>(count()) : 0.0; }
  /// Recorded values in bucket `index`.
  std::int64_t bucket_count(int index) const {
    return counts_[index].load(std::memory_order_relaxed);
  }

  /// Nearest-rank quantile (q in [0,1]): the midpoint of the bucket holding the ceil(q*n)-th
  /// smallest value, never above the exact maximum. 0 when empty.
  std::int64_t quantile(double q) const {
    const std::int64_t n = count();
    if (n == 0) return 0;
    const std::int64_t rank = rank_of(q, n);
    std::int64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += bucket_count(i);
      if (seen >= rank) return std::min(bucket_mid(i), max());
    }
    return max();
  }
  /// The rank (1-based) the nearest-rank quantile q of n values picks.
  static std::int64_t rank_of(double q, std::int64_t n) {
    q = std::clamp(q, 0.0, 1.0);
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(q * static_cast<double>(n))));
  }

  /// Number of recorded values <= `bound`, interpolated inside the bucket holding `bound`.
  double count_at_or_below(std::int64_t bound) const {
    return cumulative_counts(std::vector<std::int64_t>{bound}).front();
  }
  /// count_at_or_below for every bound of an ascending list, in one pass over the buckets.
  std::vector<double> cumulative_counts(const std::vector<std::int64_t>& ascending_bounds) const {
    std::vector<double> out;
    out.reserve(ascending_bounds.size());
    double below = 0;  // values in buckets before `next`
    int next = 0;
    for (std::int64_t bound : ascending_bounds) {
      if (bound < 0) {
        out.push_back(0);
        continue;
      }
      const int last = index_of(static_cast<std::uint64_t>(bound));
      for (; next < last; ++next) below += static_cast<double>(bucket_count(next));
      const double low = static_cast<double>(bucket_low(last));
      const double width = static_cast<double>(bucket_high(last)) - low;
      const double inside = std::clamp((static_cast<double>(bound) + 1 - low) / width, 0.0, 1.0);
      out.push_back(below + static_cast<double>(bucket_count(last)) * inside);
    }
    return out;
  }

  /// Bucket index of a value, and the [low, high) range of a bucket.
  static int index_of(std::uint64_t v) {
    if (v < static_cast<std::uint64_t>(kLinear)) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits;                   // >= 1
    const int mantissa = static_cast<int>(v >> shift);  // in [64, 128)
    return kLinear + (shift - 1) * (1 << kSubBits) + (mantissa - (1 << kSubBits));
  }
  static std::uint64_t bucket_low(int index) {
    if (index < kLinear) return static_cast<std::uint64_t>(index);
    const int rel = index - kLinear;
    const int shift = rel / (1 << kSubBits) + 1;
    const std::uint64_t mantissa = static_cast<std::uint64_t>(rel % (1 << kSubBits) + (1 << kSubBits));
    return mantissa << shift;
  }
  static std::uint64_t bucket_high(int index) {
    if (index < kLinear) return static_cast<std::uint64_t>(index) + 1;
    const int shift = (index - kLinear) / (1 << kSubBits) + 1;
    return bucket_low(index) + (std::uint64_t{1} << shift);
  }
  /// The value a quantile falling in bucket `index` reports.
  static std::int64_t bucket_mid(int index) {
    if (index < kLinear) return index;
    return static_cast<std::int64_t>((bucket_low(index) + bucket_high(index) - 1) / 2);
  }

  /// Add every value recorded in `other`.
  void merge(const Histogram& other) {
    for (int i = 0; i < kBuckets; ++i) bump(counts_[i], other.bucket_count(i));
    bump(count_, other.count());
    sum_.store(sum() + other.sum(), std::memory_order_relaxed);
    if (other.max() > max()) max_.store(other.max(), std::memory_order_relaxed);
  }
  void reset() {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
    count_.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

 private:
  static void bump(std::atomic<std::int64_t>& a, std::int64_t d) {
    a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  std::array<std::atomic<std::int64_t>, kBuckets> counts_{};
  std::atomic<std::int64_t> count_{0}, max_{0};
  std::atomic<double> sum_{0};
};

}  // namespace hldlab
