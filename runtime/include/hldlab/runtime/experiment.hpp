/// @file experiment.hpp
/// @brief An experiment: several systems fed the identical request stream, with actions and
/// faults scheduled at virtual times.
///
/// Every system runs on its own event queue and shares nothing with the others but the request
/// stream (which the seed fully determines): its results are the same whether it runs alone or
/// beside others, in any order, on any number of threads. The systems advance together from one
/// synchronisation point to the next (a Lua callback, a chunk of the request stream, a slice of
/// wall-clock time in paced runs), possibly in parallel; callbacks run in between, on the
/// calling thread. After the traffic each system drains on its own and ends when it is idle.
///
/// Order of things at one virtual instant t: callbacks at t run first; then, per system, its
/// events at t in the order they were scheduled, each before a request arriving at t.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hldlab/runtime/kernel.hpp"
#include "hldlab/runtime/loader.hpp"
#include "hldlab/runtime/recorder.hpp"
#include "hldlab/runtime/results.hpp"
#include "hldlab/runtime/workload.hpp"
#include "hldlab/slot_pool.hpp"

namespace hldlab {

class Experiment;

struct ExperimentConfig {
  std::string name = "experiment";
  std::uint64_t seed = 1;
  Time duration = seconds(10);  ///< requests arrive during [0, duration)
  Time drain = seconds(60);     ///< at most this long after `duration` for in-flight requests
                                ///< and held background work (Context::hold)
  Time warmup = 0;              ///< statistics count only requests arriving from this time on
  double max_requests = 2e8;    ///< refuse workloads that would generate more (closed loops
                                ///< fail the system that reaches it)
  double memory_budget = 0;     ///< bytes for the queued work of all systems; 0: half the
                                ///< physical memory
};

struct RunOptions {
  /// 0: as fast as possible. X > 0: virtual time follows the wall clock at X times real speed.
  double pace = 0;
  /// Threads running the systems (1: all on the calling thread). Results do not depend on it.
  unsigned jobs = 1;
};

/// @brief One system of an experiment: the runtime side of a plugin's System (its Context).
class SystemSlot final : public Context {
 public:
  /// `history_limit` > 0: record a history of at most that many operations (Context::history).
  SystemSlot(Experiment& experiment, const LoadedLesson& lesson, std::string variant,
             std::string label, const Map& params, std::size_t history_limit = 0);
  ~SystemSlot() override;

  // Context
  Time now() const override { return kernel_.now(); }
  EventId after(Time delay, Action action) override { return kernel_.after(delay, std::move(action)); }
  bool cancel(EventId id) override { return kernel_.cancel(id); }
  Rng& rng() override { return rng_; }
  std::uint64_t salt(const std::string& purpose) const override;
  const std::string& name() const override { return label_; }
  void complete(const Request& request, Outcome outcome) override;
  Metric& metric(const std::string& name) override;
  Metric& metric(const std::string& name, const std::string& label_value) override;
  void log(const std::string& message) override;
  void hold() override;
  void release() override;
  bool tracing() const override {
    return now() >= trace_from_ && now() < trace_to_ && traced_ < trace_max_;
  }
  void trace_message(int from, int to, Time sent, const std::string& label) override;
  void trace_event(int node, const std::string& label) override;
  History* history() override { return history_.get(); }
  /// Record the messages of [from, to), at most `max` messages and events.
  void trace(Time from, Time to, std::size_t max);

  bool failed() const { return !error_.empty(); }
  /// Stop this system: its results are reported with `why`; the others carry on.
  void fail(const std::string& why);
  /// Inject a lesson or generic fault; parameters are validated against its declaration.
  void inject(const std::string& fault, const Map& params);
  /// Remove an active generic fault (lesson faults are undone by their own counterpart).
  void clear(const std::string& fault);
  /// Call a lesson operation; arguments are validated against its declaration.
  Value call(const std::string& op, const Map& args);
  /// Hand a request to the system (through any active generic fault). Hot path; from outside
  /// the run loop only in a callback (tests that send requests of their own).
  void deliver(const Request& request);
  /// Forget the statistics so far (runtime and lesson): only requests arriving from now count.
  void reset_stats();

  SystemResult result() const;
  const LessonInfo& info() const { return lesson_->info(); }
  const std::string& label() const { return label_; }
  const std::string& variant() const { return variant_; }
  bool naive() const { return naive_; }
  const Recorder& recorder() const { return recorder_; }
  /// When the system ended (drained, failed or stopped); -1 while it runs.
  Time end() const { return end_; }
  /// The configuration of the experiment the system belongs to.
  const ExperimentConfig& experiment_config() const;

 private:
  friend class Experiment;
  struct LogLine {
    Time time;
    bool error;
    std::string text;
  };
  void start();
  /// Run arrivals [first, last) and events before `until`, merged in time order.
  void run_epoch(Time until, const Request* first, const Request* last);
  /// After the traffic: run events before `until` while work is in flight; ends the system
  /// when it is idle, or at `limit`.
  void drain(Time until, Time limit);
  bool idle() const { return in_flight_ == 0 && holds_ == 0; }
  void step_event();
  void issue(std::uint32_t client);
  void check_memory();
  void finish(Time at) {
    if (end_ >= 0) return;
    end_ = at;
    recorder_.finish_timeline(at);
  }
  std::string where() const { return info().name + "/" + variant_; }

  Experiment& experiment_;
  std::shared_ptr<const Lesson> lesson_;  // declared before kernel_ and system_: outlives them
  std::string variant_, label_;
  bool naive_ = false;
  Rng rng_;
  Recorder recorder_;
  std::string error_;
  std::vector<LogLine> logs_;  // flushed by the experiment at synchronisation points
  std::int64_t in_flight_ = 0, holds_ = 0;
  std::uint64_t delivered_ = 0;
  Time end_ = -1;
  bool stopped_ = false;  // a stop was requested (SIGINT, --timeout)
  Time last_event_time_ = -1;
  std::uint64_t events_at_last_time_ = 0;
  std::vector<std::uint64_t> issued_per_client_;  // closed loop
  std::uint64_t issued_ = 0;
  double memory_budget_ = 0;
  Time trace_from_ = -1, trace_to_ = -1;
  std::size_t trace_max_ = 0, traced_ = 0;
  std::vector<TracedMessage> messages_;
  std::vector<TracedEvent> node_events_;
  struct GenericFaults {
    bool any = false;
    Time delay = 0, jitter = 0;
    double error_rate = 0;
    Time blackhole_timeout = -1;  // < 0: off
    double slow_factor = 1;
  } faults_;
  // The history recorded for the checkers; null: recording off.
  std::unique_ptr<History> history_;
  SlotPool<Request> held_;  // requests delayed or blackholed by a generic fault
  Kernel kernel_;           // destroyed before system_: events may point into it
  std::unique_ptr<System> system_;
};

class Experiment {
 public:
  explicit Experiment(ExperimentConfig config = {});
  ~Experiment();
  Experiment(const Experiment&) = delete;
  Experiment& operator=(const Experiment&) = delete;

  /// Build a system now (so operations can be called before the run). The label defaults to
  /// the variant name and must be unique in the experiment. Throws on any invalid input.
  SystemSlot& add(const PluginRegistry& registry, const std::string& lesson,
                  const std::string& variant, const Map& params = {}, std::string label = "",
                  std::size_t history_limit = 0);
  /// Validates the workload against the configuration (rates, sizes, request budget).
  void set_workload(Workload workload);
  /// Run `action` at virtual time `t` (in [now, duration)), between the systems' steps;
  /// exceptions it throws stop the run and leave run().
  void at(Time t, std::function<void()> action);
  /// Run the experiment once. Throws if it has already run.
  ExperimentResult run(const RunOptions& options = {});
  /// Run only the system `label` (the others stay built but get no traffic, no callback and no
  /// row in the results): how a test checks that a system measures the same alone.
  void run_alone(const std::string& label);
  /// Whether `slot` takes part in the run (every system unless run_alone chose another).
  bool active(const SystemSlot& slot) const { return alone_.empty() || slot.label() == alone_; }

  const ExperimentConfig& config() const { return config_; }
  const Workload& workload() const { return workload_; }
  /// Virtual time of the last synchronisation point; safe to read from another thread (a
  /// metrics scrape) during run().
  Time now() const { return now_.load(std::memory_order_relaxed); }
  const std::vector<std::unique_ptr<SystemSlot>>& systems() const { return systems_; }
  bool has_run() const { return has_run_; }
  bool running() const { return running_flag_; }
  /// The run was stopped early (SIGINT, --timeout).
  bool interrupted() const { return interrupted_; }
  ExperimentResult results() const;

 private:
  struct Callback {
    Time time;
    std::uint64_t seq;
    std::function<void()> action;
  };
  Time next_callback_time() const;
  void run_callbacks_at(Time t);
  void flush_logs();
  void sleep_until_virtual(Time t, const RunOptions& options) const;
  void run_traffic(const RunOptions& options, class Workers& workers);
  void run_drain(const RunOptions& options, class Workers& workers);

  ExperimentConfig config_;
  Workload workload_;
  std::vector<std::unique_ptr<SystemSlot>> systems_;
  std::vector<SystemSlot*> running_;  // the active systems, during run()
  std::string alone_;
  std::vector<Callback> callbacks_;  // a min-heap by (time, seq)
  std::uint64_t next_callback_seq_ = 0;
  std::atomic<Time> now_{0};
  bool has_run_ = false, running_flag_ = false, interrupted_ = false;
  double wall_start_ = 0;
};

}  // namespace hldlab
