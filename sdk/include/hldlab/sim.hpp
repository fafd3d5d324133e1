/// @file sim.hpp
/// @brief The simulation kernel as a plugin sees it: virtual time, cancellable events, seeded
/// randomness.
///
/// Plugins never read the wall clock or global randomness. Everything time- or chance-related
/// goes through the SimContext handed to the System at build time, so that the same seed gives
/// the same run, byte for byte.
///
/// @code
///   EventId timeout = ctx.after(seconds(2), [this, slot] { give_up(slot); });
///   ...
///   ctx.cancel(timeout);  // the answer came first: the timeout never runs
/// @endcode
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace hldlab {

/// Virtual time and durations, in nanoseconds.
using Time = std::int64_t;

/// A number of nanoseconds as a Time, rounded to the nearest nanosecond (halves away from
/// zero). Throws std::range_error for NaN, infinities and values beyond ±292 years, which an
/// int64 cannot hold: a duration never wraps silently.
constexpr Time round_time(double ns) {
  if (!(ns > -9.2e18 && ns < 9.2e18))
    throw std::range_error(
        "duration out of range (NaN, infinite or beyond 292 years): " + std::to_string(ns) + " ns");
  return static_cast<Time>(ns < 0 ? ns - 0.5 : ns + 0.5);
}
constexpr Time nanoseconds(std::int64_t n) {
  return n;
}
constexpr Time microseconds(double us) {
  return round_time(us * 1e3);
}
constexpr Time milliseconds(double ms) {
  return round_time(ms * 1e6);
}
constexpr Time seconds(double s) {
  return round_time(s * 1e9);
}
constexpr double to_seconds(Time t) {
  return static_cast<double>(t) * 1e-9;
}
constexpr double to_milliseconds(Time t) {
  return static_cast<double>(t) * 1e-6;
}
/// `t` scaled by `factor` (a slow-down, a speed), rounded and range-checked like round_time.
inline Time scale_time(Time t, double factor) {
  return round_time(static_cast<double>(t) * factor);
}

namespace detail {

/// @brief The tables of the ziggurat method (G. Marsaglia and W. W. Tsang, "The Ziggurat Method
/// for Generating Random Variables", 2000) for a decreasing density f on [0, inf) with f(0) = 1.
///
/// The area under f is cut into 256 layers of equal area v: layer 0 is the strip [0, r] x
/// [0, f(r)] plus the tail beyond r; layer i >= 1 is the rectangle [0, x[i]] x [f(x[i]),
/// f(x[i+1])]. A draw picks a layer and a point u * x[i] in it: inside [0, x[i+1]) it is
/// under f whatever its height (about 99 % of draws: one random word, one multiply); otherwise
/// it is in the wedge (a height is drawn and compared with f) or, in layer 0, in the tail.
struct Ziggurat {
  static constexpr int kLayers = 256;
  /// x[0] = v / f(r) (the base strip's width if it held the tail), x[1] = r, ..., x[256] = 0.
  double x[kLayers + 1];
  double f[kLayers + 1];  ///< f(x[i])
  double r;               ///< where the tail starts

  /// Finds r (by bisection: the layers built up from r must close exactly at f = 1) and fills
  /// the tables. `tail(r)` is the area under f beyond r, `f_inverse` the inverse of f.
  template <class F, class FInverse, class Tail>
  static Ziggurat build(F density, FInverse f_inverse, Tail tail) {
    Ziggurat z{};
    // Layers climbed from r with area v each; returns how far the last one overshoots f = 1.
    auto overshoot = [&](double r) {
      const double v = r * density(r) + tail(r);
      double x = r;
      for (int i = 1; i < kLayers - 1; ++i) {
        const double y = density(x) + v / x;
        if (y >= 1) return 1.0;  // the layers reach the top too soon: r is too small
        x = f_inverse(y);
      }
      return density(x) + v / x - 1;
    };
    double lo = 0.5, hi = 20;
    for (int i = 0; i < 200 && lo < hi; ++i) {
      const double mid = (lo + hi) / 2;
      if (mid <= lo || mid >= hi) break;
      (overshoot(mid) > 0 ? lo : hi) = mid;
    }
    z.r = hi;
    const double v = z.r * density(z.r) + tail(z.r);
    z.x[0] = v / density(z.r);
    z.x[1] = z.r;
    for (int i = 2; i < kLayers; ++i) z.x[i] = f_inverse(density(z.x[i - 1]) + v / z.x[i - 1]);
    z.x[kLayers] = 0;
    for (int i = 0; i <= kLayers; ++i) z.f[i] = density(z.x[i]);
    z.f[kLayers] = 1;
    return z;
  }
};

/// Ziggurat of exp(-x) (the exponential distribution).
inline const Ziggurat& exponential_ziggurat() {
  static const Ziggurat z =
      Ziggurat::build([](double x) { return std::exp(-x); }, [](double y) { return -std::log(y); },
                      [](double r) { return std::exp(-r); });
  return z;
}
/// Ziggurat of exp(-x^2 / 2) (the half-normal distribution).
inline const Ziggurat& normal_ziggurat() {
  static const Ziggurat z = Ziggurat::build(
      [](double x) { return std::exp(-0.5 * x * x); },
      [](double y) { return std::sqrt(-2 * std::log(y)); },
      [](double r) { return 1.2533141373155003 * std::erfc(r * 0.7071067811865476); });
  return z;
}

}  // namespace detail

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
  double uniform() { return to_unit(next()); }
  /// Uniform real in (0, 1]: safe to take the logarithm of.
  double uniform_open() { return 1.0 - uniform(); }
  /// Uniform integer in [0, n); n must be > 0. Lemire's multiply-shift, bias below 2^-64 * n.
  std::uint64_t below(std::uint64_t n) {
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<u128>(next()) * n) >> 64);
  }
  /// True with probability p.
  bool chance(double p) { return uniform() < p; }
  /// Standard normal deviate (ziggurat: one random word and a multiply for about 99 % of draws).
  double normal() {
    const detail::Ziggurat& z = detail::normal_ziggurat();
    for (;;) {
      const std::uint64_t bits = next();
      const int layer = static_cast<int>(bits & 0xFF);
      const double sign = (bits & 0x100) != 0 ? -1.0 : 1.0;
      const double x = to_unit(bits) * z.x[layer];
      if (x < z.x[layer + 1]) return sign * x;
      if (layer == 0) {  // the tail beyond r (G. Marsaglia, 1964)
        double a, b;
        do {
          a = -std::log(uniform_open()) / z.r;
          b = -std::log(uniform_open());
        } while (b + b < a * a);
        return sign * (z.r + a);
      }
      if (z.f[layer] + uniform() * (z.f[layer + 1] - z.f[layer]) < std::exp(-0.5 * x * x))
        return sign * x;
    }
  }
  /// Exponential deviate with the given mean (ziggurat, like normal()).
  double exponential(double mean) {
    const detail::Ziggurat& z = detail::exponential_ziggurat();
    double beyond = 0;  // the tail of an exponential is an exponential shifted by r
    for (;;) {
      const std::uint64_t bits = next();
      const int layer = static_cast<int>(bits & 0xFF);
      const double x = to_unit(bits) * z.x[layer];
      if (x < z.x[layer + 1]) return mean * (beyond + x);
      if (layer == 0) {
        beyond += z.r;
        continue;
      }
      if (z.f[layer] + uniform() * (z.f[layer + 1] - z.f[layer]) < std::exp(-x))
        return mean * (beyond + x);
    }
  }

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
  /// Stateless uniform real in [0, 1) from (seed, a, b): the same inputs give the same number
  /// in every system, which is how common random numbers are drawn per request.
  static double uniform_at(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
    return to_unit(hash(hash(seed ^ hash(a)) ^ b));
  }
  /// FNV-1a of a string: a stream number from a name ("latency", a lesson name).
  static constexpr std::uint64_t hash_name(const char* s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ULL;
    return h;
  }

 private:
  static double to_unit(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

/// @brief A `void()` callable for the event queue. Captures of up to kInlineSize bytes (the
/// usual `[this, slot, generation]`, or `[this]` and a few numbers) live inside the object:
/// scheduling such an event allocates nothing. Larger captures go to the heap. Move-only.
class Action {
 public:
  static constexpr std::size_t kInlineSize = 40;

  Action() noexcept = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Action>>>
  Action(F&& f) {  // NOLINT: implicit, so that ctx.after(d, [..] {..}) reads naturally
    using Fn = std::decay_t<F>;
    if constexpr (sizeof(Fn) <= kInlineSize && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
      ops_ = &inline_ops<Fn>;
    } else {
      *reinterpret_cast<Fn**>(storage_) = new Fn(std::forward<F>(f));
      ops_ = &heap_ops<Fn>;
    }
  }
  Action(Action&& other) noexcept { take(other); }
  Action& operator=(Action&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  Action(const Action&) = delete;
  Action& operator=(const Action&) = delete;
  ~Action() { reset(); }

  void operator()() { ops_->invoke(storage_); }
  explicit operator bool() const { return ops_ != nullptr; }
  /// Destroy the callable (and its captures) now.
  void reset() {
    if (ops_ != nullptr && ops_->destroy != nullptr) ops_->destroy(storage_);
    ops_ = nullptr;
  }

 private:
  struct Ops {
    void (*invoke)(void*);
    void (*move)(void* to, void* from);  ///< nullptr: a byte copy is a move
    void (*destroy)(void*);              ///< nullptr: nothing to destroy
  };
  template <class Fn>
  static constexpr bool kTrivial =
      std::is_trivially_copyable_v<Fn>&& std::is_trivially_destructible_v<Fn>;
  template <class Fn>
  static inline const Ops inline_ops = {
      [](void* p) { (*static_cast<Fn*>(p))(); },
      kTrivial<Fn> ? nullptr
                   : +[](void* to, void* from) {
                       ::new (to) Fn(std::move(*static_cast<Fn*>(from)));
                       static_cast<Fn*>(from)->~Fn();
                     },
      kTrivial<Fn> ? nullptr : +[](void* p) { static_cast<Fn*>(p)->~Fn(); }};
  template <class Fn>
  static inline const Ops heap_ops = {[](void* p) { (**static_cast<Fn**>(p))(); }, nullptr,
                                      [](void* p) { delete *static_cast<Fn**>(p); }};

  void take(Action& other) noexcept {
    ops_ = other.ops_;
    if (ops_ == nullptr) return;
    if (ops_->move != nullptr)
      ops_->move(storage_, other.storage_);
    else
      std::memcpy(storage_, other.storage_, kInlineSize);
    other.ops_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char storage_[kInlineSize];
  const Ops* ops_ = nullptr;
};

/// @brief Names one scheduled event, so that it can be cancelled. A default-constructed
/// EventId names none. Ids are never reused: cancelling an event that already ran (or was
/// cancelled) does nothing.
struct EventId {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;  ///< 0: no event
  explicit operator bool() const { return generation != 0; }
  bool operator==(const EventId& o) const { return slot == o.slot && generation == o.generation; }
};

/// @brief The kernel services a System uses: clock, event scheduling, randomness.
///
/// One SimContext per System. All calls are single-threaded and happen inside the simulation.
class SimContext {
 public:
  virtual ~SimContext() = default;
  /// Current virtual time (ns since the start of the experiment).
  virtual Time now() const = 0;
  /// Run `action` after `delay` ns of virtual time. Events at the same time run in the order
  /// they were scheduled. A negative delay is an error (it throws std::invalid_argument and
  /// fails the system). Captures up to Action::kInlineSize bytes do not allocate.
  virtual EventId after(Time delay, Action action) = 0;
  /// Cancel a pending event: it will not run and its captures are destroyed now. Returns false
  /// when the event already ran or was cancelled (or `id` names none).
  virtual bool cancel(EventId id) = 0;
  /// This System's own random stream, derived from the experiment seed and the lesson name
  /// (not the label): identical systems draw identical numbers.
  virtual Rng& rng() = 0;
  /// A number derived from the experiment seed, the lesson and `purpose`: the same in every
  /// variant of the lesson, another with another seed. Salt per-request draws with it, so that
  /// every variant sees the same ones: `Rng::hash(r.id ^ ctx.salt("lost answers"))`.
  virtual std::uint64_t salt(const std::string& purpose) const = 0;
  /// The System's name as shown in results ("lesson/variant" or the experiment label).
  virtual const std::string& name() const = 0;
};

}  // namespace hldlab
