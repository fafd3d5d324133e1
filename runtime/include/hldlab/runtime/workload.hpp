/// @file workload.hpp
/// @brief Traffic: arrival processes, key popularity and service-time distributions, and the
/// request stream they produce.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/runtime/trace.hpp"
#include "hldlab/sim.hpp"
#include "hldlab/system.hpp"

namespace hldlab {

/// @brief How requests arrive: open loop (constant or Poisson, with a ramp and spikes) or closed
/// loop (a fixed population of clients that wait for each answer, then think).
struct Arrivals {
  /// constant: one request every 1/rps, the first at 1/rps (none at time 0); poisson:
  /// exponential gaps of mean 1/rps; closed: `clients` clients, each waiting for its answer;
  /// trace: the requests of a file (times, keys, sizes, ops), see TraceSpec.
  enum class Kind { constant, poisson, closed, trace };
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
  std::shared_ptr<const TraceSpec> trace;  ///< trace replay

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

  /// "poisson 100 rps; keys zipf(...); service ..." (without the service when `with_service`
  /// is false: no system of the experiment uses it).
  std::string describe(bool with_service = true) const;
};

/// @brief The open-loop request stream of an experiment, fully determined by the workload, the
/// duration and the seed. Every field has its own random stream (arrival times, clients, keys,
/// service times, operations, sizes), so turning writes on or sizes on changes no key.
class RequestStream {
 public:
  RequestStream(const Workload& workload, Time duration, std::uint64_t seed);
  /// Append the next requests (arrival < duration) to `out`: `max`, or more when the last ones
  /// share an arrival time with the next; returns how many.
  std::size_t fill(std::vector<Request>& out, std::size_t max);
  /// Arrival time of the next request not produced yet; Kernel::kNever when the stream is over.
  Time next_arrival() const { return next_; }

 private:
  void advance();
  void add_gap(double ns);

  const Workload& workload_;
  std::unique_ptr<TraceReader> trace_;
  TraceRecord record_;  // the trace's next request
  std::uint64_t replayed_ = 0;
  Time duration_;
  Rng arrivals_, clients_, keys_, service_, ops_, sizes_;
  Time t_ = 0;         // integral part of the arrival clock
  double frac_ = 0;    // its fractional nanoseconds, so that high rates lose nothing
  Time next_;          // the next arrival, or kNever
  std::uint64_t next_id_ = 0;
  double peak_rate_;       // arrivals' peak rate (thinning draws candidates at it)
  double peak_gap_;        // 1e9 / peak_rate_: mean gap between Poisson candidates, ns
  bool steady_rate_;       // no ramp and no spike: every candidate is kept
};

/// Fill key, service, op and size of `r` from the streams `key`, `service`, `op`, `size`.
void draw_request(const Workload& w, Rng& key, Rng& service, Rng& op, Rng& size, Request& r);

/// Closed loop: request `id` (= (count << 20) | client) gets the same content and the same
/// think time after it in every system: its randomness comes from (seed, id) only.
struct ClosedLoopDraw {
  Request request;
  Time think = 0;
};
ClosedLoopDraw draw_closed_loop(const Workload& w, std::uint64_t seed, std::uint64_t id);
/// The id of request number `count` of closed-loop client `client`.
constexpr std::uint64_t closed_loop_id(std::uint32_t client, std::uint64_t count) {
  return (count << 20) | client;
}

}  // namespace hldlab
