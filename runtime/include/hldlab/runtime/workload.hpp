/// @file workload.hpp
/// @brief Traffic: arrival processes, key popularity and service-time distributions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hldlab/sim.hpp"
#include "hldlab/system.hpp"

namespace hldlab {

/// @brief A distribution of non-negative numbers (durations in ns, or sizes).
struct Distribution {
  enum class Kind { constant, exponential, uniform, lognormal, pareto, bimodal };
  Kind kind = Kind::constant;
  double a = 0, b = 0, c = 0;  ///< see the factory functions for the meaning per kind

  static Distribution constant(double value) { return {Kind::constant, value}; }
  static Distribution exponential(double mean) { return {Kind::exponential, mean}; }
  static Distribution uniform(double min, double max) { return {Kind::uniform, min, max}; }
  /// Lognormal with the given median and 99th percentile (p99 >= median).
  static Distribution lognormal(double median, double p99);
  /// Pareto (type I) with scale `min` and shape `alpha` (> 0; heavy-tailed when alpha <= 2).
  static Distribution pareto(double min, double alpha) { return {Kind::pareto, min, alpha}; }
  /// `fast` with probability 1 - slow_share, else `slow`.
  static Distribution bimodal(double fast, double slow, double slow_share) {
    return {Kind::bimodal, fast, slow, slow_share};
  }

  double sample(Rng& rng) const;
  /// Exact mean of the distribution (infinite for Pareto with alpha <= 1).
  double mean() const;
  std::string describe() const;
};

/// @brief Popularity of keys in [0, n).
class KeyDistribution {
 public:
  enum class Kind { uniform, zipf, hotspot };
  static KeyDistribution uniform(std::uint64_t n);
  /// Zipf with exponent s >= 0 over ranks 1..n (key 0 is the most popular).
  static KeyDistribution zipf(std::uint64_t n, double s);
  /// A fraction `hot_keys` of the keys receives a fraction `hot_share` of the traffic.
  static KeyDistribution hotspot(std::uint64_t n, double hot_keys, double hot_share);

  std::uint64_t sample(Rng& rng) const;
  std::uint64_t size() const { return n_; }
  Kind kind() const { return kind_; }
  std::string describe() const;

 private:
  double h(double x) const;
  double big_h(double x) const;
  double big_h_inverse(double x) const;
  Kind kind_ = Kind::uniform;
  std::uint64_t n_ = 1;
  double s_ = 0;
  double hot_keys_ = 0, hot_share_ = 0;
  double h_x1_ = 0, h_n_ = 0, threshold_ = 0;  // zipf rejection-inversion constants
};

/// @brief How requests arrive: open loop (constant or Poisson, with a ramp and spikes) or closed
/// loop (a fixed population of clients that wait for each answer, then think).
struct Arrivals {
  /// constant: one request every 1/rps, the first at 1/rps (none at time 0); poisson:
  /// exponential gaps of mean 1/rps; closed: `clients` clients, each waiting for its answer.
  enum class Kind { constant, poisson, closed };
  struct Spike {
    Time start, end;
    double rps;
  };
  Kind kind = Kind::poisson;
  double rps = 100;
  double ramp_to_rps = -1;  ///< < 0: no ramp
  Time ramp_start = 0, ramp_end = 0;
  std::vector<Spike> spikes;
  std::uint32_t clients = 0;  ///< closed loop
  Distribution think = Distribution::constant(0);

  /// Requests per second at time t (open loop).
  double rate_at(Time t) const;
  double peak_rate() const;
  std::string describe() const;
};

/// @brief Everything needed to produce the request stream of an experiment.
struct Workload {
  Arrivals arrivals;
  KeyDistribution keys = KeyDistribution::uniform(1000);
  Distribution service = Distribution::constant(static_cast<double>(milliseconds(10)));
  std::uint32_t clients = 1000;  ///< open loop: client ids are uniform in [0, clients)
  double write_share = 0;        ///< probability that a request is a write
  bool has_sizes = false;
  Distribution sizes = Distribution::constant(1);

  /// Fill key, service, op, size of `r` from `rng` (client, id and arrival are set by the caller).
  void draw(Rng& rng, Request& r) const;
  std::string describe() const;
};

}  // namespace hldlab
