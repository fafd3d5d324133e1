#include "hldlab/runtime/kernel.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace hldlab {

EventId Kernel::at(Time t, Action&& action) {
  if (t < now())
    throw std::invalid_argument("an event was scheduled " + std::to_string(now() - t) +
                                " ns in the past (a negative delay)");
  std::uint32_t slot;
  if (free_.empty()) {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    slot = free_.back();
    free_.pop_back();
  }
  Slot& s = slots_[slot];
  s.action = std::move(action);
  push(Entry{t, next_seq_++, slot, s.generation});
  ++live_;
  return EventId{slot, s.generation};
}

EventId Kernel::after(Time delay, Action&& action) {
  if (delay < 0)
    throw std::invalid_argument("an event was scheduled with a negative delay (" +
                                std::to_string(delay) + " ns)");
  if (delay > kNever - now()) throw std::invalid_argument("an event was scheduled beyond 292 years");
  return at(now() + delay, std::move(action));
}

void Kernel::retire(std::uint32_t slot) {
  Slot& s = slots_[slot];
  if (++s.generation == 0) s.generation = 1;  // 0 means "no event" in an EventId
  free_.push_back(slot);
  --live_;
}

bool Kernel::cancel(EventId id) {
  if (!id || id.slot >= slots_.size() || slots_[id.slot].generation != id.generation) return false;
  slots_[id.slot].action.reset();
  retire(id.slot);
  if (++stale_ > 1024 && stale_ > live_) sweep_stale();
  return true;
}

bool Kernel::step() {
  drop_stale_top();
  if (heap_.empty()) return false;
  const Entry top = heap_.front();
  pop();
  now_.store(top.time, std::memory_order_relaxed);
  Action action = std::move(slots_[top.slot].action);
  retire(top.slot);
  action();
  return true;
}

void Kernel::run_before(Time until) {
  while (next_time() < until) step();
  advance_to(until);
}

void Kernel::clear() {
  heap_.clear();
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].action) {
      slots_[i].action.reset();
      retire(i);
    }
  stale_ = 0;
}

// 4-ary min-heap: shallower than a binary heap, and the four children of a node share a
// cache line or two.
void Kernel::push(const Entry& e) {
  std::size_t i = heap_.size();
  heap_.push_back(e);
  while (i > 0) {
    const std::size_t parent = (i - 1) / 4;
    if (!before(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

void Kernel::pop() {
  const Entry last = heap_.back();
  heap_.pop_back();
  if (heap_.empty()) return;
  heap_[0] = last;
  sift_down(0);
}

void Kernel::sift_down(std::size_t i) {
  const Entry e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t end = std::min(first + 4, n);
    for (std::size_t c = first + 1; c < end; ++c)
      if (before(heap_[c], heap_[best])) best = c;
    if (!before(heap_[best], e)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = e;
}

void Kernel::sweep_stale() {
  std::size_t kept = 0;
  for (const Entry& e : heap_)
    if (slots_[e.slot].generation == e.generation) heap_[kept++] = e;
  heap_.resize(kept);
  for (std::size_t i = heap_.size() / 4 + 1; i-- > 0;)
    if (i < heap_.size()) sift_down(i);
  stale_ = 0;
}

}  // namespace hldlab
