/// @file failure_window.hpp
/// @brief FailureWindow: the outcomes of the last N calls, as a count-based circuit breaker
/// judges them. Recording an outcome forgets the oldest once N are held; the ring is allocated
/// once, so recording allocates nothing.
///
/// @code
///   FailureWindow outcomes(20);            // judge the last 20 calls
///   outcomes.record(call_succeeded);
///   if (outcomes.tripped(10, 0.5)) open();  // at least 10 calls, at least half of them failed
///   ...
///   outcomes.clear();                       // closing again: start from no history
/// @endcode
#pragma once

#include <cstddef>
#include <stdexcept>
#include <vector>

namespace hldlab {

class FailureWindow {
 public:
  /// A window over the last `size` outcomes (at least 1).
  explicit FailureWindow(std::size_t size) : failed_(size, false) {
    if (size == 0) throw std::invalid_argument("a failure window holds at least one outcome");
  }

  /// Add the outcome of one call; once the window is full, the oldest outcome drops out.
  void record(bool success) {
    if (recorded_ == failed_.size())
      failures_ -= failed_[next_] ? 1 : 0;
    else
      ++recorded_;
    failed_[next_] = !success;
    failures_ += success ? 0 : 1;
    next_ = (next_ + 1) % failed_.size();
  }

  /// True when at least `min_calls` outcomes are held and at least `failure_rate` of them failed.
  bool tripped(std::size_t min_calls, double failure_rate) const {
    return recorded_ >= min_calls &&
           static_cast<double>(failures_) >= failure_rate * static_cast<double>(recorded_);
  }

  /// Forget every outcome (the size stays). The ring keeps its old bits: each is written again
  /// before record() reads it.
  void clear() { next_ = recorded_ = failures_ = 0; }

  std::size_t size() const { return failed_.size(); }
  /// Outcomes held: the calls recorded since the last clear, at most size().
  std::size_t recorded() const { return recorded_; }
  /// Failures among the outcomes held.
  std::size_t failures() const { return failures_; }

 private:
  std::vector<bool> failed_;  // ring of the last size() outcomes, true = failure
  std::size_t next_ = 0, recorded_ = 0, failures_ = 0;
};

}  // namespace hldlab
