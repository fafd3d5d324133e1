/// @file workers.hpp
/// @brief A fixed pool of worker threads that runs a batch of independent tasks and waits for
/// all of them (the systems of an experiment between two synchronisation points).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hldlab {

class Workers {
 public:
  /// `threads` workers (1: tasks run on the calling thread, no thread is started).
  explicit Workers(unsigned threads);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  /// Run task(0) ... task(count - 1), spread over the workers and the calling thread; returns
  /// when all are done. The first exception a task throws is rethrown here (after all tasks
  /// ended).
  void run(std::size_t count, const std::function<void(std::size_t)>& task);
  unsigned threads() const { return static_cast<unsigned>(threads_.size()) + 1; }

 private:
  void work();
  void drain_batch();

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t)>* task_ = nullptr;
  std::size_t count_ = 0, next_ = 0, finished_ = 0;
  std::uint64_t batch_ = 0;
  std::exception_ptr error_;
  bool stopping_ = false;
};

/// The number of hardware threads (at least 1).
unsigned hardware_threads();

}  // namespace hldlab
