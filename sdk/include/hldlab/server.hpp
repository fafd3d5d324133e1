/// @file server.hpp
/// @brief Server: a queueing server (c workers in front of one FIFO queue with a limit) that
/// can be slowed down, killed and restarted. The building block of backends, databases,
/// shards, replicas and consumers.
///
/// @code
///   Server<Request> backend(ctx, {.workers = 4, .queue_limit = 1000},
///                           [this](Request& r) { ctx_.complete(r, Outcome::ok); });
///   if (backend.submit(r, r.service) == Admission::rejected) ctx_.complete(r, Outcome::rejected);
///   ...
///   backend.kill([this](Request& r) { ctx_.complete(r, Outcome::error); });  // a crash
/// @endcode
///
/// A job's work is divided by the server's speed and multiplied by its slow factor when it
/// starts. Nothing is allocated per job once the queue and the pool of running jobs have grown
/// to their peak. A Server must stay where it was built (its events point to it): keep several
/// in a std::deque or behind std::unique_ptr, not in a std::vector that grows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <utility>

#include "hldlab/fifo.hpp"
#include "hldlab/sim.hpp"
#include "hldlab/slot_pool.hpp"

namespace hldlab {

/// What happened to a job handed to Server::submit.
enum class Admission : std::uint8_t {
  started,   ///< a worker was free: it is running
  queued,    ///< it waits for a worker
  rejected,  ///< the queue was full: the job is not kept (answer the caller, e.g. a 503)
  down,      ///< the server is dead: the job is not kept (e.g. connection refused)
};

template <class Job>
class Server {
 public:
  struct Options {
    int workers = 1;  ///< jobs served at once
    std::size_t queue_limit = std::numeric_limits<std::size_t>::max();  ///< waiting jobs
    double speed = 1;  ///< work is divided by this
  };
  /// Called when a job's work is done (at its completion time).
  using Done = std::function<void(Job&)>;

  Server(SimContext& ctx, Options options, Done on_done)
      : ctx_(ctx), options_(options), on_done_(std::move(on_done)) {
    if (options_.workers < 0) throw std::invalid_argument("a server needs workers >= 0");
    if (!(options_.speed > 0)) throw std::invalid_argument("a server's speed must be positive");
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Start `job` now if a worker is free, else queue it (or refuse it: full queue, dead
  /// server). `work` is its service time on a normal-speed, non-slowed server.
  Admission submit(Job job, Time work) {
    if (!alive_) return Admission::down;
    if (busy() < options_.workers) {
      start(std::move(job), work);
      return Admission::started;
    }
    if (queue_.size() >= options_.queue_limit) return Admission::rejected;
    queue_.push_back({std::move(job), work});
    return Admission::queued;
  }

  /// The server dies: every running job, then every queued one (oldest first), is handed to
  /// `lost(Job&)`, and submit() answers Admission::down until restart().
  template <class F>
  void kill(F&& lost) {
    if (!alive_) return;
    account();
    alive_ = false;
    running_.for_each([&](SlotHandle h, Running& run) {
      ctx_.cancel(run.event);
      Job job = std::move(run.job);
      running_.release(h);
      lost(job);
    });
    while (!queue_.empty()) {
      Waiting w = queue_.pop_front();
      lost(w.job);
    }
  }
  /// The server is back, idle (and no longer slowed).
  void restart() {
    alive_ = true;
    set_slow(1);
  }
  /// Multiply the work of jobs starting from now on (1: normal).
  void set_slow(double factor) {
    if (!(factor > 0)) throw std::invalid_argument("a slow factor must be positive");
    ctx_.cancel(slow_end_);
    slow_ = factor;
  }
  /// Slow down for `duration`, then back to normal (a later set_slow or set_slow_for replaces
  /// it).
  void set_slow_for(double factor, Time duration) {
    set_slow(factor);
    slow_end_ = ctx_.after(duration, [this] { slow_ = 1; });
  }
  /// Change the number of workers; new ones take queued jobs at once, removed ones finish
  /// their current job first.
  void set_workers(int workers) {
    if (workers < 0) throw std::invalid_argument("a server needs workers >= 0");
    options_.workers = workers;
    start_queued();
  }
  /// Remove the queued jobs for which `drop(Job&)` returns true (it answers them itself).
  template <class F>
  void drop_queued_if(F&& drop) {
    queue_.retain([&](Waiting& w) { return !drop(w.job); });
  }

  bool alive() const { return alive_; }
  double slow_factor() const { return slow_; }
  double speed() const { return options_.speed; }
  int workers() const { return options_.workers; }
  int busy() const { return static_cast<int>(running_.in_use()); }
  std::size_t queued() const { return queue_.size(); }
  /// Jobs running or waiting: what least-connections balancing compares.
  std::size_t outstanding() const { return running_.in_use() + queue_.size(); }
  /// Jobs whose work completed.
  std::int64_t served() const { return served_; }
  /// Worker-seconds spent working so far (utilisation = busy_seconds / (workers * elapsed)).
  double busy_seconds() {
    account();
    return to_seconds(busy_ns_);
  }

 private:
  struct Running {
    Job job{};
    EventId event;
  };
  struct Waiting {
    Job job{};
    Time work = 0;
  };

  void start(Job job, Time work) {
    account();
    const SlotHandle h = running_.acquire();
    running_[h].job = std::move(job);
    const Time t = round_time(static_cast<double>(work) / options_.speed * slow_);
    running_[h].event = ctx_.after(t, [this, h] { finish(h); });
  }
  void finish(SlotHandle h) {
    account();
    Job job = std::move(running_[h].job);
    running_.release(h);
    ++served_;
    start_queued();  // the freed worker takes the next job before the caller hears of this one
    on_done_(job);
  }
  void start_queued() {
    while (alive_ && busy() < options_.workers && !queue_.empty()) {
      Waiting w = queue_.pop_front();
      start(std::move(w.job), w.work);
    }
  }
  void account() {
    const Time now = ctx_.now();
    busy_ns_ += static_cast<Time>(running_.in_use()) * (now - last_change_);
    last_change_ = now;
  }

  SimContext& ctx_;
  Options options_;
  Done on_done_;
  SlotPool<Running> running_;
  Fifo<Waiting> queue_;
  bool alive_ = true;
  double slow_ = 1;
  EventId slow_end_;
  std::int64_t served_ = 0;
  Time busy_ns_ = 0, last_change_ = 0;
};

}  // namespace hldlab
