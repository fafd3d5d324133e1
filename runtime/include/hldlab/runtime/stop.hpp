/// @file stop.hpp
/// @brief A process-wide request to stop running simulations: the first SIGINT/SIGTERM or the
/// wall-clock limit (--timeout). Simulations and the Lua hook poll it; nothing is killed
/// mid-step, so the results so far stay consistent and are reported as interrupted.
#pragma once

#include <atomic>

namespace hldlab {

enum class StopReason : int { none = 0, interrupted = 1, timeout = 2 };

namespace detail {
inline std::atomic<int> stop_reason{0};
}

/// Ask every running simulation to stop (async-signal-safe). The first reason given sticks.
inline void request_stop(StopReason reason) {
  int expected = 0;
  detail::stop_reason.compare_exchange_strong(expected, static_cast<int>(reason));
}
inline bool stop_requested() {
  return detail::stop_reason.load(std::memory_order_relaxed) != 0;
}
inline StopReason stop_reason() {
  return static_cast<StopReason>(detail::stop_reason.load());
}
/// Forget a stop request (tests; a new run in the same process).
inline void clear_stop() {
  detail::stop_reason.store(0);
}

}  // namespace hldlab
