/// @file kernel.hpp
/// @brief Deterministic discrete-event kernel: events ordered by (time, sequence number).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab {

/// Something that owns events (a System): when it has failed its events are skipped, and an
/// exception thrown by one of its events fails it instead of stopping the run.
class EventOwner {
 public:
  virtual bool failed() const = 0;
  virtual void fail(const std::string& why) = 0;

 protected:
  ~EventOwner() = default;
};

class Kernel {
 public:
  /// Schedule `action` at absolute virtual time `at` (never before now()).
  /// Exceptions from an owned event fail its owner; from an unowned one they leave run_until().
  void at(Time at, std::function<void()> action, EventOwner* owner = nullptr);
  /// Schedule `action` after `delay` ns (negative delays count as 0).
  void after(Time delay, std::function<void()> action, EventOwner* owner = nullptr) {
    at(now() + (delay > 0 ? delay : 0), std::move(action), owner);
  }
  /// The virtual clock. Atomic (relaxed) only so that a metrics scrape may read it while the
  /// simulation thread runs; it costs the hot path nothing on x86 and ARM64.
  Time now() const { return now_.load(std::memory_order_relaxed); }
  bool empty() const { return heap_.empty(); }
  std::size_t pending() const { return heap_.size(); }
  /// Time of the next event; only valid when !empty().
  Time next_time() const { return heap_.front().time; }

  /// Run every event with time <= `until`, in order; afterwards now() == max(now(), until)
  /// unless stopped early. Returns the number of events run.
  std::uint64_t run_until(Time until);
  /// Run the single next event. Returns false when there is none.
  bool step();
  /// Drop every pending event (their captured state is destroyed now).
  void clear() { heap_.clear(); }
  /// Jump the clock forward to `t` (>= now()) without running anything.
  void advance_to(Time t) {
    if (t > now()) now_.store(t, std::memory_order_relaxed);
  }

 private:
  struct Event {
    Time time;
    std::uint64_t seq;
    EventOwner* owner;
    std::function<void()> action;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };
  std::vector<Event> heap_;
  std::atomic<Time> now_{0};
  std::uint64_t next_seq_ = 0;
};

}  // namespace hldlab
