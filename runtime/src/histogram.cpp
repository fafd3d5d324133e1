#include "hldlab/runtime/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace hldlab {

std::uint64_t LatencyHistogram::bucket_low(int index) {
  if (index < kLinear) return static_cast<std::uint64_t>(index);
  const int rel = index - kLinear;
  const int shift = rel / (1 << kSubBits) + 1;
  const std::uint64_t mantissa = (rel % (1 << kSubBits)) + (1 << kSubBits);
  return mantissa << shift;
}

std::uint64_t LatencyHistogram::bucket_high(int index) {
  if (index < kLinear) return static_cast<std::uint64_t>(index) + 1;
  const int shift = (index - kLinear) / (1 << kSubBits) + 1;
  return bucket_low(index) + (std::uint64_t{1} << shift);
}

std::int64_t LatencyHistogram::quantile(double q) const {
  const std::int64_t n = count();
  if (n == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(q * n)));
  std::int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      if (i < kLinear) return i;
      const auto mid = static_cast<std::int64_t>((bucket_low(i) + bucket_high(i) - 1) / 2);
      return std::min(mid, max());
    }
  }
  return max();
}

double LatencyHistogram::count_at_or_below(std::int64_t bound) const {
  if (bound < 0) return 0;
  const int last = index_of(static_cast<std::uint64_t>(bound));
  double total = 0;
  for (int i = 0; i < last; ++i) total += counts_[i].load(std::memory_order_relaxed);
  const double low = static_cast<double>(bucket_low(last));
  const double width = static_cast<double>(bucket_high(last)) - low;
  const double inside = (static_cast<double>(bound) + 1 - low) / width;
  return total + counts_[last].load(std::memory_order_relaxed) * std::clamp(inside, 0.0, 1.0);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) bump(counts_[i], other.counts_[i].load());
  bump(count_, other.count());
  bump(sum_, other.sum());
  if (other.max() > max()) max_.store(other.max());
}

void LatencyHistogram::reset() {
  for (auto& c : counts_) c.store(0);
  count_ = 0;
  sum_ = 0;
  max_ = 0;
}

}  // namespace hldlab
