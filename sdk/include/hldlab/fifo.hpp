/// @file fifo.hpp
/// @brief Fifo: a first-in first-out queue on a ring buffer that only grows. Once it has grown
/// to the largest backlog, pushing and popping allocate nothing (std::deque allocates a block
/// every few hundred bytes of traffic).
///
/// @code
///   Fifo<Request> waiting;
///   waiting.push_back(r);
///   const Request next = waiting.pop_front();
/// @endcode
#pragma once

#include <cstddef>
#include <stdexcept>
#include <utility>
#include <vector>

namespace hldlab {

template <class T>
class Fifo {
 public:
  void push_back(T value) {
    if (size_ == items_.size()) grow();
    items_[(head_ + size_) & (items_.size() - 1)] = std::move(value);
    ++size_;
  }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  /// Remove and return the oldest element; the queue must not be empty.
  T pop_front() {
    if (size_ == 0) throw std::logic_error("Fifo::pop_front on an empty queue");
    T value = std::move(items_[head_]);
    head_ = (head_ + 1) & (items_.size() - 1);
    --size_;
    return value;
  }
  /// The i-th oldest element (0 = front).
  T& operator[](std::size_t i) { return items_[(head_ + i) & (items_.size() - 1)]; }
  const T& operator[](std::size_t i) const { return items_[(head_ + i) & (items_.size() - 1)]; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() {
    head_ = 0;
    size_ = 0;
  }
  /// Keep only the elements for which keep(element) is true, in order.
  template <class F>
  void retain(F&& keep) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i)
      if (keep((*this)[i])) (*this)[kept++] = std::move((*this)[i]);
    size_ = kept;
  }

 private:
  void grow() {
    std::vector<T> bigger(items_.empty() ? 16 : items_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    items_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> items_;  // capacity is a power of two
  std::size_t head_ = 0, size_ = 0;
};

}  // namespace hldlab
