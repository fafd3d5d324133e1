#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/sim.hpp"

using namespace hldlab;

namespace {
std::int64_t exact_quantile(std::vector<std::int64_t> sorted, double q) {
  const auto rank =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(q * sorted.size())));
  return sorted[static_cast<std::size_t>(rank - 1)];
}
}  // namespace

TEST_CASE("histogram quantiles agree with exact sorted quantiles within 1%") {
  for (std::uint64_t seed : {1, 2, 3}) {
    Rng rng(seed);
    Histogram h;
    std::vector<std::int64_t> values;
    for (int i = 0; i < 200000; ++i) {
      // lognormal around 20 ms with a long tail, spanning microseconds to seconds
      const auto v = static_cast<std::int64_t>(std::exp(std::log(2e7) + 1.5 * rng.normal()));
      values.push_back(v);
      h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
      const double exact = static_cast<double>(exact_quantile(values, q));
      const double approx = static_cast<double>(h.quantile(q));
      INFO("seed " << seed << " q " << q << " exact " << exact << " approx " << approx);
      REQUIRE(std::abs(approx - exact) / exact <= 0.01);
    }
    REQUIRE(h.max() == values.back());
    REQUIRE(h.count() == static_cast<std::int64_t>(values.size()));
  }
}

TEST_CASE("values below 128 ns are recorded exactly") {
  Histogram h;
  for (int v = 0; v < 128; ++v) h.record(v);
  REQUIRE(h.quantile(0.5) == 63);
  REQUIRE(h.quantile(1.0) == 127);
  REQUIRE(h.quantile(0.0) == 0);
}

TEST_CASE("every value falls inside the bounds of its bucket, and buckets tile the line") {
  Rng rng(7);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng.next() >> (1 + rng.below(62));  // below the last bucket
    const int b = Histogram::index_of(v);
    REQUIRE(b < Histogram::kBuckets);
    REQUIRE(Histogram::bucket_low(b) <= v);
    REQUIRE(v < Histogram::bucket_high(b));
  }
  for (int b = 0; b + 1 < Histogram::kBuckets - 1; ++b)
    REQUIRE(Histogram::bucket_high(b) == Histogram::bucket_low(b + 1));
}

TEST_CASE("count at or below a bound counts whole buckets below it") {
  Histogram h;
  for (int i = 0; i < 100; ++i) h.record(1000);
  for (int i = 0; i < 50; ++i) h.record(1'000'000);
  REQUIRE(h.count_at_or_below(500) == 0);
  REQUIRE(h.count_at_or_below(2000) == 100);
  REQUIRE(h.count_at_or_below(10'000'000) == 150);
}

TEST_CASE("an empty histogram reports zeros") {
  Histogram h;
  REQUIRE(h.quantile(0.99) == 0);
  REQUIRE(h.count() == 0);
  REQUIRE(h.mean() == 0);
}
