#include "hldlab/runtime/kernel.hpp"

#include <algorithm>

namespace hldlab {

void Kernel::at(Time at, std::function<void()> action, EventOwner* owner) {
  heap_.push_back(Event{std::max(at, now()), next_seq_++, owner, std::move(action)});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

bool Kernel::step() {
  if (heap_.empty()) return false;
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  Event event = std::move(heap_.back());
  heap_.pop_back();
  now_.store(event.time, std::memory_order_relaxed);
  if (event.owner == nullptr) {
    event.action();
  } else if (!event.owner->failed()) {
    try {
      event.action();
    } catch (const std::exception& e) {
      event.owner->fail(e.what());
    } catch (...) {
      event.owner->fail("unknown exception");
    }
  }
  return true;
}

std::uint64_t Kernel::run_until(Time until) {
  std::uint64_t ran = 0;
  while (!heap_.empty() && heap_.front().time <= until) {
    step();
    ++ran;
  }
  advance_to(until);
  return ran;
}

}  // namespace hldlab
