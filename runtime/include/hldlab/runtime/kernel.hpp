/// @file kernel.hpp
/// @brief The event queue of one system: events ordered by (time, sequence number), so runs are
/// deterministic; cancellable through EventId; no allocation per event once warmed up.
///
/// Events live in a slab of reusable slots (an Action holds small captures inline); a 4-ary
/// min-heap orders (time, sequence, slot) entries. Cancelling frees the slot at once and leaves
/// its heap entry behind as stale, recognised by the slot's generation and skipped (and swept
/// out when stale entries outnumber live ones).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab {

class Kernel {
 public:
  static constexpr Time kNever = std::numeric_limits<Time>::max();

  /// Schedule `action` at absolute time `t`; throws std::invalid_argument when t < now().
  EventId at(Time t, Action&& action);
  /// Schedule `action` after `delay` ns; throws std::invalid_argument when delay < 0.
  EventId after(Time delay, Action&& action);
  /// Cancel a pending event; false when it already ran, was cancelled, or `id` names none.
  bool cancel(EventId id);

  /// The virtual clock. Atomic (relaxed) only so that a metrics scrape may read it while the
  /// simulation thread runs; it costs the hot path nothing on x86 and ARM64.
  Time now() const { return now_.load(std::memory_order_relaxed); }
  /// Events scheduled and neither run nor cancelled.
  std::size_t pending() const { return live_; }
  bool empty() const { return live_ == 0; }
  /// Time of the next live event, kNever when there is none.
  Time next_time() {
    drop_stale_top();
    return heap_.empty() ? kNever : heap_.front().time;
  }
  /// Run the next live event (the clock moves to its time). False when there is none.
  /// An exception thrown by the event leaves step() (the event is consumed).
  bool step();
  /// Run every event with time < `until`; then the clock shows at least `until`.
  void run_before(Time until);
  /// Jump the clock forward to `t` without running anything (never backwards).
  void advance_to(Time t) {
    if (t > now()) now_.store(t, std::memory_order_relaxed);
  }
  /// Drop every pending event (their captures are destroyed now).
  void clear();
  /// Bytes held by the queue (slots and heap), for the memory budget.
  std::size_t memory_bytes() const {
    return slots_.capacity() * sizeof(Slot) + heap_.capacity() * sizeof(Entry) +
           free_.capacity() * sizeof(std::uint32_t);
  }

 private:
  struct Entry {
    Time time;
    std::uint64_t seq;
    std::uint32_t slot, generation;
  };
  struct Slot {
    Action action;
    std::uint32_t generation = 1;
  };
  static bool before(const Entry& a, const Entry& b) {
    return a.time != b.time ? a.time < b.time : a.seq < b.seq;
  }
  void push(const Entry& e);
  void pop();
  void sift_down(std::size_t i);
  void drop_stale_top() {
    while (!heap_.empty() && slots_[heap_.front().slot].generation != heap_.front().generation) {
      pop();
      --stale_;
    }
  }
  void retire(std::uint32_t slot);
  void sweep_stale();

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t live_ = 0, stale_ = 0;
  std::uint64_t next_seq_ = 0;
  std::atomic<Time> now_{0};
};

}  // namespace hldlab
