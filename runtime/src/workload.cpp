#include "hldlab/runtime/workload.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace hldlab {
namespace {
constexpr double kZ99 = 2.3263478740408408;  // standard normal 99th percentile

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}
std::string ns_text(double ns) {
  if (ns >= 1e9) return number(ns / 1e9) + "s";
  if (ns >= 1e6) return number(ns / 1e6) + "ms";
  if (ns >= 1e3) return number(ns / 1e3) + "us";
  return number(ns) + "ns";
}
}  // namespace

Distribution Distribution::lognormal(double median, double p99) {
  if (median <= 0 || p99 < median) throw std::invalid_argument("lognormal needs 0 < median <= p99");
  return {Kind::lognormal, std::log(median), std::log(p99 / median) / kZ99};
}

double Distribution::sample(Rng& rng) const {
  switch (kind) {
    case Kind::constant:
      return a;
    case Kind::exponential:
      return rng.exponential(a);
    case Kind::uniform:
      return a + (b - a) * rng.uniform();
    case Kind::lognormal:
      return std::exp(a + b * rng.normal());
    case Kind::pareto:
      return a / std::pow(rng.uniform_open(), 1.0 / b);
    case Kind::bimodal:
      return rng.chance(c) ? b : a;
  }
  return a;
}

double Distribution::mean() const {
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

std::string Distribution::describe() const {
  switch (kind) {
    case Kind::constant:
      return ns_text(a);
    case Kind::exponential:
      return "exponential(mean " + ns_text(a) + ")";
    case Kind::uniform:
      return "uniform(" + ns_text(a) + ".." + ns_text(b) + ")";
    case Kind::lognormal:
      return "lognormal(median " + ns_text(std::exp(a)) + ", p99 " +
             ns_text(std::exp(a + kZ99 * b)) + ")";
    case Kind::pareto:
      return "pareto(min " + ns_text(a) + ", alpha " + number(b) + ")";
    case Kind::bimodal:
      return "bimodal(" + ns_text(a) + " / " + ns_text(b) + " at " + number(c * 100) + "%)";
  }
  return "?";
}

// Zipf sampling by rejection-inversion (W. Hormann and G. Derflinger, 1996): O(1) per sample,
// no table. Ranks are 1..n with P(k) proportional to k^-s; H is an integral of h(x) = x^-s.
namespace {
double expm1_over_x(double x) {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1 + x / 2;
}
double log1p_over_x(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1 - x / 2;
}
}  // namespace

double KeyDistribution::h(double x) const {
  return std::exp(-s_ * std::log(x));
}
double KeyDistribution::big_h(double x) const {
  const double log_x = std::log(x);
  return expm1_over_x((1 - s_) * log_x) * log_x;
}
double KeyDistribution::big_h_inverse(double x) const {
  double t = x * (1 - s_);
  if (t < -1) t = -1;  // guard rounding at the boundary
  return std::exp(log1p_over_x(t) * x);
}

KeyDistribution KeyDistribution::uniform(std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("key space must not be empty");
  KeyDistribution d;
  d.n_ = n;
  return d;
}

KeyDistribution KeyDistribution::zipf(std::uint64_t n, double s) {
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

KeyDistribution KeyDistribution::hotspot(std::uint64_t n, double hot_keys, double hot_share) {
  if (n == 0) throw std::invalid_argument("key space must not be empty");
  if (!(hot_keys > 0 && hot_keys <= 1) || !(hot_share >= 0 && hot_share <= 1))
    throw std::invalid_argument("hotspot needs 0 < hot_keys <= 1 and 0 <= hot_share <= 1");
  KeyDistribution d;
  d.kind_ = Kind::hotspot;
  d.n_ = n;
  d.hot_keys_ = hot_keys;
  d.hot_share_ = hot_share;
  return d;
}

std::uint64_t KeyDistribution::sample(Rng& rng) const {
  switch (kind_) {
    case Kind::uniform:
      return rng.below(n_);
    case Kind::hotspot: {
      const auto hot = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(hot_keys_ * n_));
      if (rng.chance(hot_share_) || hot == n_) return rng.below(hot);
      return hot + rng.below(n_ - hot);
    }
    case Kind::zipf:
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

std::string KeyDistribution::describe() const {
  switch (kind_) {
    case Kind::uniform:
      return "uniform(" + number(static_cast<double>(n_)) + ")";
    case Kind::zipf:
      return "zipf(" + number(static_cast<double>(n_)) + ", s=" + number(s_) + ")";
    case Kind::hotspot:
      return "hotspot(" + number(static_cast<double>(n_)) + ", " + number(hot_keys_ * 100) +
             "% keys get " + number(hot_share_ * 100) + "%)";
  }
  return "?";
}

double Arrivals::rate_at(Time t) const {
  for (const Spike& s : spikes)
    if (t >= s.start && t < s.end) return s.rps;
  if (ramp_to_rps >= 0 && t >= ramp_start) {
    if (t >= ramp_end || ramp_end == ramp_start) return ramp_to_rps;
    const double f =
        static_cast<double>(t - ramp_start) / static_cast<double>(ramp_end - ramp_start);
    return rps + (ramp_to_rps - rps) * f;
  }
  return rps;
}

double Arrivals::peak_rate() const {
  double peak = std::max(rps, ramp_to_rps);
  for (const Spike& s : spikes) peak = std::max(peak, s.rps);
  return peak;
}

std::string Arrivals::describe() const {
  if (kind == Kind::closed)
    return "closed loop, " + number(clients) + " clients, think " + think.describe();
  std::string text = (kind == Kind::poisson ? "poisson " : "constant ") + number(rps) + " rps";
  if (ramp_to_rps >= 0) text += " ramping to " + number(ramp_to_rps);
  for (const Spike& s : spikes) text += ", spike " + number(s.rps) + " rps";
  return text;
}

void Workload::draw(Rng& rng, Request& r) const {
  r.key = keys.sample(rng);
  r.service = static_cast<Time>(std::max(0.0, service.sample(rng)));
  r.op = write_share > 0 && rng.chance(write_share) ? Op::write : Op::read;
  r.size = has_sizes
               ? static_cast<std::uint32_t>(std::clamp(std::round(sizes.sample(rng)), 1.0, 4e9))
               : 1;
}

std::string Workload::describe() const {
  std::string text =
      arrivals.describe() + "; keys " + keys.describe() + "; service " + service.describe();
  if (write_share > 0) text += "; writes " + number(write_share * 100) + "%";
  return text;
}

}  // namespace hldlab
