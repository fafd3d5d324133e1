/// @file distribution.hpp
/// @brief The distributions of workloads, for lessons too: durations and sizes (constant,
/// exponential, uniform, lognormal from a median and a P99, Pareto, bimodal) and key
/// popularity (uniform, Zipf, hotspot).
///
/// @code
///   const Distribution db = Distribution::lognormal(milliseconds(2), milliseconds(40));
///   ctx.after(db.sample_time(ctx.rng()), [this, slot] { db_done(slot); });
/// @endcode
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "hldlab/sim.hpp"

namespace hldlab {

/// The standard normal distribution's 99th percentile.
constexpr double kNormalP99 = 2.3263478740408408;

/// "1.5s", "20ms", "250us", "10ns" for a number of nanoseconds.
inline std::string format_nanoseconds(double ns) {
  std::ostringstream out;
  if (ns >= 1e9)
    out << ns / 1e9 << "s";
  else if (ns >= 1e6)
    out << ns / 1e6 << "ms";
  else if (ns >= 1e3)
    out << ns / 1e3 << "us";
  else
    out << ns << "ns";
  return out.str();
}

/// @brief A distribution of non-negative numbers (durations in ns, or sizes), optionally capped.
struct Distribution {
  enum class Kind { constant, exponential, uniform, lognormal, pareto, bimodal };
  Kind kind = Kind::constant;
  double a = 0, b = 0, c = 0;  ///< see the factory functions for the meaning per kind
  double cap = std::numeric_limits<double>::infinity();  ///< larger draws are cut to this

  static Distribution constant(double value) { return {Kind::constant, value}; }
  static Distribution exponential(double mean) { return {Kind::exponential, mean}; }
  static Distribution uniform(double min, double max) { return {Kind::uniform, min, max}; }
  /// Lognormal with the given median and 99th percentile (0 < median <= p99). With p99 equal
  /// to the median it is the constant `median` (and costs no exp).
  static Distribution lognormal(double median, double p99) {
    if (!(median > 0 && p99 >= median))
      throw std::invalid_argument("lognormal needs 0 < median <= p99");
    return {Kind::lognormal, std::log(median), std::log(p99 / median) / kNormalP99, median};
  }
  /// Pareto (type I) with scale `min` and shape `alpha` (> 0; heavy-tailed when alpha <= 2).
  static Distribution pareto(double min, double alpha) {
    if (!(min > 0 && alpha > 0)) throw std::invalid_argument("pareto needs min > 0, alpha > 0");
    return {Kind::pareto, min, alpha};
  }
  /// `fast` with probability 1 - slow_share, else `slow`.
  static Distribution bimodal(double fast, double slow, double slow_share) {
    return {Kind::bimodal, fast, slow, slow_share};
  }
  /// The same distribution with draws above `max` cut to `max` (a bounded Pareto, a timeout).
  Distribution capped(double max) const {
    Distribution d = *this;
    d.cap = max;
    return d;
  }

  double sample(Rng& rng) const { return std::min(raw_sample(rng), cap); }
  /// A draw as a duration, rounded to the nanosecond; throws std::range_error for a draw
  /// beyond 292 years instead of wrapping (see exceeds_time_range to refuse such a
  /// distribution up front).
  Time sample_time(Rng& rng) const { return round_time(sample(rng)); }

  /// P(X > x), before the cap.
  double tail_probability(double x) const {
    switch (kind) {
      case Kind::constant:
        return a > x ? 1 : 0;
      case Kind::exponential:
        return x < 0 ? 1 : std::exp(-x / a);
      case Kind::uniform:
        return b <= a ? (a > x ? 1 : 0) : std::clamp((b - x) / (b - a), 0.0, 1.0);
      case Kind::lognormal:
        if (x <= 0) return 1;
        if (b == 0) return c > x ? 1 : 0;
        return 0.5 * std::erfc((std::log(x) - a) / (b * 1.4142135623730951));
      case Kind::pareto:
        return x < a ? 1 : std::pow(a / x, b);
      case Kind::bimodal:
        return (1 - c) * (a > x ? 1 : 0) + c * (b > x ? 1 : 0);
    }
    return 0;
  }
  /// True when a duration drawn from it could exceed what Time holds (292 years) with a
  /// probability above 1e-15: such a distribution must be capped.
  bool exceeds_time_range() const { return cap > 9e18 && tail_probability(9e18) > 1e-15; }

  /// Exact mean of the distribution before the cap (infinite for Pareto with alpha <= 1).
  double mean() const {
    switch (kind) {
      case Kind::constant:
        return a;
      case Kind::exponential:
        return a;
      case Kind::uniform:
        return (a + b) / 2;
      case Kind::lognormal:
        return std::exp(a + b * b / 2);
      case Kind::pareto:
        return b <= 1 ? INFINITY : b * a / (b - 1);
      case Kind::bimodal:
        return a * (1 - c) + b * c;
    }
    return a;
  }
  /// "lognormal(median 20ms, p99 400ms)"; durations when `time`, plain numbers otherwise.
  std::string describe(bool time = true) const {
    auto amount = [time](double v) {
      if (time) return format_nanoseconds(v);
      std::ostringstream out;
      out << v;
      return out.str();
    };
    std::ostringstream out;
    switch (kind) {
      case Kind::constant:
        out << amount(a);
        break;
      case Kind::exponential:
        out << "exponential(mean " << amount(a) << ")";
        break;
      case Kind::uniform:
        out << "uniform(" << amount(a) << ".." << amount(b) << ")";
        break;
      case Kind::lognormal:
        out << "lognormal(median " << amount(std::exp(a)) << ", p99 "
            << amount(std::exp(a + kNormalP99 * b)) << ")";
        break;
      case Kind::pareto:
        out << "pareto(min " << amount(a) << ", alpha " << b << ")";
        break;
      case Kind::bimodal:
        out << "bimodal(" << amount(a) << " / " << amount(b) << " at " << c * 100 << "%)";
        break;
    }
    if (std::isfinite(cap)) out << " capped at " << amount(cap);
    return out.str();
  }

 private:
  double raw_sample(Rng& rng) const {
    switch (kind) {
      case Kind::constant:
        return a;
      case Kind::exponential:
        return rng.exponential(a);
      case Kind::uniform:
        return a + (b - a) * rng.uniform();
      case Kind::lognormal:
        return b == 0 ? c : std::exp(a + b * rng.normal());
      case Kind::pareto:
        return a / std::pow(rng.uniform_open(), 1.0 / b);
      case Kind::bimodal:
        return rng.chance(c) ? b : a;
    }
    return a;
  }
};

/// @brief Popularity of keys in [0, n): key 0 is the most popular under Zipf.
class KeyDistribution {
 public:
  enum class Kind { uniform, zipf, hotspot };
  static KeyDistribution uniform(std::uint64_t n) {
    if (n == 0) throw std::invalid_argument("key space must not be empty");
    KeyDistribution d;
    d.n_ = n;
    return d;
  }
  /// Zipf with exponent s in [0, 20] over ranks 1..n (key = rank - 1).
  static KeyDistribution zipf(std::uint64_t n, double s) {
    if (n == 0) throw std::invalid_argument("key space must not be empty");
    if (!(s >= 0) || s > 20) throw std::invalid_argument("zipf exponent s must be in [0, 20]");
    KeyDistribution d;
    d.kind_ = Kind::zipf;
    d.n_ = n;
    d.s_ = s;
    d.h_x1_ = d.big_h(1.5) - 1;
    d.h_n_ = d.big_h(static_cast<double>(n) + 0.5);
    d.threshold_ = 2 - d.big_h_inverse(d.big_h(2.5) - d.h(2));
    return d;
  }
  /// A fraction `hot_keys` of the keys receives a fraction `hot_share` of the traffic.
  static KeyDistribution hotspot(std::uint64_t n, double hot_keys, double hot_share) {
    if (n == 0) throw std::invalid_argument("key space must not be empty");
    if (!(hot_keys > 0 && hot_keys <= 1) || !(hot_share >= 0 && hot_share <= 1))
      throw std::invalid_argument("hotspot needs 0 < hot_keys <= 1 and 0 <= hot_share <= 1");
    KeyDistribution d;
    d.kind_ = Kind::hotspot;
    d.n_ = n;
    d.hot_keys_ = hot_keys;
    d.hot_share_ = hot_share;
    d.hot_ = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(hot_keys * static_cast<double>(n)));
    return d;
  }

  std::uint64_t sample(Rng& rng) const {
    switch (kind_) {
      case Kind::uniform:
        return rng.below(n_);
      case Kind::hotspot:
        if (rng.chance(hot_share_) || hot_ == n_) return rng.below(hot_);
        return hot_ + rng.below(n_ - hot_);
      case Kind::zipf:
        // Rejection-inversion (W. Hormann and G. Derflinger, 1996): O(1) per sample, no table.
        for (;;) {
          const double u = h_n_ + rng.uniform() * (h_x1_ - h_n_);
          const double x = big_h_inverse(u);
          double k = std::floor(x + 0.5);
          if (k < 1) k = 1;
          if (k > static_cast<double>(n_)) k = static_cast<double>(n_);
          if (k - x <= threshold_ || u >= big_h(k + 0.5) - h(k))
            return static_cast<std::uint64_t>(k) - 1;
        }
    }
    return 0;
  }
  std::uint64_t size() const { return n_; }
  Kind kind() const { return kind_; }
  double exponent() const { return s_; }
  std::string describe() const {
    std::ostringstream out;
    switch (kind_) {
      case Kind::uniform:
        out << "uniform(" << static_cast<double>(n_) << ")";
        break;
      case Kind::zipf:
        out << "zipf(" << static_cast<double>(n_) << ", s=" << s_ << ")";
        break;
      case Kind::hotspot:
        out << "hotspot(" << static_cast<double>(n_) << ", " << hot_keys_ * 100 << "% keys get "
            << hot_share_ * 100 << "%)";
        break;
    }
    return out.str();
  }

 private:
  // H is an integral of h(x) = x^-s, written to stay accurate near s = 1.
  static double expm1_over_x(double x) { return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1 + x / 2; }
  static double log1p_over_x(double x) { return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1 - x / 2; }
  double h(double x) const { return std::exp(-s_ * std::log(x)); }
  double big_h(double x) const {
    const double log_x = std::log(x);
    return expm1_over_x((1 - s_) * log_x) * log_x;
  }
  double big_h_inverse(double x) const {
    double t = x * (1 - s_);
    if (t < -1) t = -1;  // guard rounding at the boundary
    return std::exp(log1p_over_x(t) * x);
  }
  Kind kind_ = Kind::uniform;
  std::uint64_t n_ = 1, hot_ = 1;
  double s_ = 0;
  double hot_keys_ = 0, hot_share_ = 0;
  double h_x1_ = 0, h_n_ = 0, threshold_ = 0;
};

}  // namespace hldlab
