/// @file slot_pool.hpp
/// @brief Reusable slots for the state a system keeps per request (or job) in flight.
///
/// Events scheduled with Context::after should capture a small handle (`[this, h]`, 16 bytes,
/// kept inside the Action without allocating) rather than the state itself. A SlotPool hands
/// out those handles and reuses released slots, so once it has grown to the peak number of
/// requests in flight the hot path allocates nothing. A handle carries a generation: after its
/// slot is released (and maybe reused), get() on the old handle returns nullptr, so an event
/// that outlived its request recognises it.
///
/// @code
///   SlotPool<Request> in_service_;
///   const auto h = in_service_.acquire();
///   in_service_[h] = request;
///   ctx_.after(request.service, [this, h] {
///     ctx_.complete(in_service_[h], Outcome::ok);
///     in_service_.release(h);
///   });
///   ...
///   in_service_.for_each([&](SlotHandle h, Request& r) { ... });  // e.g. a crash loses all
/// @endcode
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace hldlab {

/// Names one acquisition of a slot. A default-constructed handle names none.
struct SlotHandle {
  std::uint32_t index = 0;
  std::uint32_t generation = 0;  ///< 0: none
  explicit operator bool() const { return generation != 0; }
  bool operator==(const SlotHandle& o) const {
    return index == o.index && generation == o.generation;
  }
};

/// @brief A vector of T whose released slots are reused (a free list), with generation-checked
/// handles. References do not survive a later acquire() (the vector may grow).
template <class T>
class SlotPool {
 public:
  /// A free slot: a reused one (holding its old value: reset what you need) or a new T.
  SlotHandle acquire() {
    std::uint32_t index;
    if (free_.empty()) {
      index = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      index = free_.back();
      free_.pop_back();
    }
    Slot& s = slots_[index];
    s.used = true;
    return {index, s.generation};
  }
  /// Give a slot back: its handle becomes stale. Releasing a stale handle throws.
  void release(SlotHandle h) {
    if (!live(h)) throw std::logic_error("SlotPool: release of a slot not held by this handle");
    Slot& s = slots_[h.index];
    s.used = false;
    if (++s.generation == 0) s.generation = 1;
    free_.push_back(h.index);
  }
  /// The slot's value, or nullptr when the handle is stale (released since).
  T* get(SlotHandle h) { return live(h) ? &slots_[h.index].value : nullptr; }
  const T* get(SlotHandle h) const { return live(h) ? &slots_[h.index].value : nullptr; }
  /// The slot's value; the handle must be live.
  T& operator[](SlotHandle h) { return slots_[h.index].value; }
  const T& operator[](SlotHandle h) const { return slots_[h.index].value; }
  /// By index, for structures that keep slot indices (the slot must be in use).
  T& operator[](std::uint32_t index) { return slots_[index].value; }
  const T& operator[](std::uint32_t index) const { return slots_[index].value; }
  void release(std::uint32_t index) { release(SlotHandle{index, slots_[index].generation}); }
  bool live(SlotHandle h) const {
    return h && h.index < slots_.size() && slots_[h.index].used &&
           slots_[h.index].generation == h.generation;
  }
  /// Slots acquired and not released.
  std::size_t in_use() const { return slots_.size() - free_.size(); }
  /// f(SlotHandle, T&) for every slot in use, by index. f may release the slot it is given.
  template <class F>
  void for_each(F&& f) {
    for (std::uint32_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].used) f(SlotHandle{i, slots_[i].generation}, slots_[i].value);
  }
  /// f(SlotHandle, const T&) for every slot in use, by index (reading only).
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].used) f(SlotHandle{i, slots_[i].generation}, slots_[i].value);
  }

 private:
  struct Slot {
    T value{};
    std::uint32_t generation = 1;
    bool used = false;
  };
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
};

}  // namespace hldlab
