/// @file sim.hpp
/// @brief The simulation kernel as a plugin sees it: virtual time, events, seeded randomness.
///
/// Plugins never read the wall clock or global randomness. Everything time- or chance-related
/// goes through the SimContext handed to the System at build time, so that the same seed gives
/// the same run, byte for byte.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

namespace hldlab {

/// Virtual time and durations, in nanoseconds.
using Time = std::int64_t;

constexpr Time nanoseconds(std::int64_t n) {
  return n;
}
constexpr Time microseconds(double us) {
  return static_cast<Time>(us * 1e3);
}
constexpr Time milliseconds(double ms) {
  return static_cast<Time>(ms * 1e6);
}
constexpr Time seconds(double s) {
  return static_cast<Time>(s * 1e9);
}
constexpr double to_seconds(Time t) {
  return static_cast<double>(t) * 1e-9;
}
constexpr double to_milliseconds(Time t) {
  return static_cast<double>(t) * 1e-6;
}

/// @brief Deterministic pseudo-random generator (xoshiro256**), seeded through splitmix64.
///
/// Cheap to copy; each System gets its own stream derived from the experiment seed.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    for (auto& word : s_) word = splitmix64(seed);
  }
  /// Next 64 random bits.
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform real in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform real in (0, 1]: safe to take the logarithm of.
  double uniform_open() { return 1.0 - uniform(); }
  /// Uniform integer in [0, n); n must be > 0. Lemire's multiply-shift, bias below 2^-64 * n.
  std::uint64_t below(std::uint64_t n) {
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<u128>(next()) * n) >> 64);
  }
  /// True with probability p.
  bool chance(double p) { return uniform() < p; }
  /// Standard normal deviate (Box-Muller, one of the pair).
  double normal() {
    const double u1 = uniform_open(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /// Exponential deviate with the given mean.
  double exponential(double mean) { return -mean * std::log(uniform_open()); }

  /// Derive an independent seed from a base seed and a stream number.
  static std::uint64_t derive(std::uint64_t base, std::uint64_t stream) {
    std::uint64_t x = base ^ (0x9E3779B97F4A7C15ULL * (stream + 1));
    return splitmix64(x);
  }
  /// One step of splitmix64; also a good 64-bit mixing hash.
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Stateless 64-bit hash of a value (splitmix64 finaliser).
  static std::uint64_t hash(std::uint64_t v) { return splitmix64(v); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

/// @brief The kernel services a System uses: clock, event scheduling, randomness, completion.
///
/// One SimContext per System. All calls are single-threaded and happen inside the simulation.
class SimContext {
 public:
  virtual ~SimContext() = default;
  /// Current virtual time (ns since the start of the experiment).
  virtual Time now() const = 0;
  /// Run `action` after `delay` ns of virtual time (delay >= 0). Events at the same time run in
  /// the order they were scheduled. Keep captures small (two pointers) to avoid allocation.
  virtual void after(Time delay, std::function<void()> action) = 0;
  /// This System's own random stream, derived from the experiment seed.
  virtual Rng& rng() = 0;
  /// The System's name as shown in results ("lesson/variant" or the experiment label).
  virtual const std::string& name() const = 0;
};

}  // namespace hldlab
