/// @file slot_pool.hpp
/// @brief Reusable slots for the state a system keeps per request in flight.
///
/// Events scheduled with Context::after should capture a slot index (`[this, slot]`, 16 bytes,
/// stored inside std::function without allocating) rather than the state itself. A SlotPool
/// hands out those indices and reuses released ones, so once it has grown to the peak number of
/// requests in flight the hot path allocates nothing.
///
/// @code
///   SlotPool<Request> in_service_;
///   const std::uint32_t slot = in_service_.acquire();
///   in_service_[slot] = request;
///   ctx_.after(request.service, [this, slot] {
///     ctx_.complete(in_service_[slot], Outcome::ok);
///     in_service_.release(slot);
///   });
/// @endcode
#pragma once

#include <cstdint>
#include <vector>

namespace hldlab {

/// @brief A vector of T whose released slots are reused (a free list). Indices stay valid until
/// released; references do not survive a later acquire() (the vector may grow).
template <class T>
class SlotPool {
 public:
  /// A free slot: a reused one (holding its old value: reset what you need) or a new T.
  std::uint32_t acquire() {
    if (free_.empty()) {
      items_.emplace_back();
      return static_cast<std::uint32_t>(items_.size() - 1);
    }
    const std::uint32_t slot = free_.back();
    free_.pop_back();
    return slot;
  }
  /// Give `slot` back; it must be in use (released slots are not checked).
  void release(std::uint32_t slot) { free_.push_back(slot); }
  T& operator[](std::uint32_t slot) { return items_[slot]; }
  const T& operator[](std::uint32_t slot) const { return items_[slot]; }
  /// Slots acquired and not released.
  std::size_t in_use() const { return items_.size() - free_.size(); }

 private:
  std::vector<T> items_;
  std::vector<std::uint32_t> free_;
};

}  // namespace hldlab
