/// @file experiment.hpp
/// @brief An experiment: several systems in one simulation, fed the identical request stream,
/// with actions and faults scheduled at virtual times.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hldlab/runtime/kernel.hpp"
#include "hldlab/runtime/loader.hpp"
#include "hldlab/runtime/recorder.hpp"
#include "hldlab/runtime/results.hpp"
#include "hldlab/runtime/workload.hpp"

namespace hldlab {

class Experiment;

struct ExperimentConfig {
  std::string name = "experiment";
  std::uint64_t seed = 1;
  Time duration = seconds(10);  ///< requests arrive during [0, duration)
  Time drain = seconds(60);     ///< at most this long after `duration` for in-flight requests
                                ///< and held background work (Context::hold)
  double max_requests = 2e8;    ///< refuse workloads that would generate more
};

struct RunOptions {
  /// 0: as fast as possible. X > 0: virtual time follows the wall clock at X times real speed.
  double pace = 0;
};

/// @brief One system of an experiment: the runtime side of a plugin's System (its Context).
class SystemSlot final : public Context, public EventOwner {
 public:
  SystemSlot(Experiment& experiment, const LoadedLesson& lesson, std::string variant,
             std::string label, const Map& params);
  ~SystemSlot() override;

  // Context
  Time now() const override;
  void after(Time delay, std::function<void()> action) override;
  Rng& rng() override { return rng_; }
  const std::string& name() const override { return label_; }
  void complete(const Request& request, Outcome outcome) override;
  Metric& metric(const std::string& name) override;
  void log(const std::string& message) override;
  void hold() override;
  void release() override;

  // EventOwner
  bool failed() const override { return !error_.empty(); }
  void fail(const std::string& why) override;

  /// Hand a request to the system (through any active generic fault). Hot path.
  void deliver(const Request& request);
  /// Inject a lesson or generic fault; parameters are validated against its declaration.
  void inject(const std::string& fault, const Map& params);
  /// Remove an active generic fault (lesson faults are undone by their own counterpart).
  void clear(const std::string& fault);
  /// Call a lesson operation; arguments are validated against its declaration.
  Value call(const std::string& op, const Map& args);

  SystemResult result(Time duration) const;
  const LessonInfo& info() const { return lesson_->info(); }
  const std::string& label() const { return label_; }
  const std::string& variant() const { return variant_; }
  bool naive() const { return naive_; }
  const Recorder& recorder() const { return recorder_; }
  Experiment& experiment() { return experiment_; }
  /// Closed loop: one random stream per client, seeded identically in every system.
  void start_clients(std::uint32_t count);
  Rng& client_rng(std::uint32_t client) { return client_rngs_[client]; }
  std::uint64_t next_request_id() { return next_request_id_++; }

 private:
  void handle_now(const Request& request);
  std::string where() const { return info().name + "/" + variant_; }

  Experiment& experiment_;
  std::shared_ptr<const Lesson> lesson_;  // declared before system_: outlives it
  std::string variant_, label_;
  bool naive_ = false;
  Rng rng_, fault_rng_;
  Recorder recorder_;
  std::string error_;
  std::vector<Rng> client_rngs_;  // closed loop: one stream per client, same in every system
  std::uint64_t next_request_id_ = 0;
  std::int64_t holds_ = 0;  // Context::hold() not released yet
  struct GenericFaults {
    bool any = false;
    Time delay = 0, jitter = 0;
    double error_rate = 0;
    Time blackhole_timeout = -1;  // < 0: off
    double slow_factor = 1;
  } faults_;
  std::unique_ptr<System> system_;
};

class Experiment {
 public:
  explicit Experiment(ExperimentConfig config);
  ~Experiment();
  Experiment(const Experiment&) = delete;
  Experiment& operator=(const Experiment&) = delete;

  /// Build a system now (so operations can be called before the run). The label defaults to
  /// the variant name and must be unique in the experiment. Throws on any invalid input.
  SystemSlot& add(const PluginRegistry& registry, const std::string& lesson,
                  const std::string& variant, const Map& params = {}, std::string label = "");
  /// Validates the workload against the configuration (rates, sizes, request budget).
  void set_workload(Workload workload);
  /// Run `action` at virtual time `t`; exceptions it throws stop the run and leave run().
  void at(Time t, std::function<void()> action);
  /// Run the experiment once. Throws if it has already run.
  ExperimentResult run(const RunOptions& options = {});

  const ExperimentConfig& config() const { return config_; }
  const Workload& workload() const { return workload_; }
  Kernel& kernel() { return kernel_; }
  /// Virtual time now; safe to read from another thread (a metrics scrape) during run().
  Time now() const { return kernel_.now(); }
  const std::vector<std::unique_ptr<SystemSlot>>& systems() const { return systems_; }
  bool has_run() const { return has_run_; }
  bool running() const { return running_; }
  ExperimentResult results() const;

  // Used by SystemSlot.
  void request_finished(SystemSlot& slot, const Request& request);
  // Work in flight: requests not completed yet and systems' holds (Context::hold).
  void requests_abandoned(std::int64_t n) { in_flight_ -= n; }
  void request_started() { ++in_flight_; }
  void work_held(std::int64_t n) { in_flight_ += n; }

 private:
  void schedule_next_arrival();
  void arrive();
  void issue(SystemSlot& slot, std::uint32_t client);
  /// Run events up to `until` (following the wall clock when paced); with `until_idle`, stop as
  /// soon as no request is in flight and no Context::hold() is pending.
  void advance(Time until, const RunOptions& options, bool until_idle);

  ExperimentConfig config_;
  Workload workload_;
  Rng workload_rng_;
  std::vector<std::unique_ptr<SystemSlot>> systems_;
  std::vector<std::pair<Time, std::function<void()>>> actions_;
  std::uint64_t next_request_id_ = 0;
  std::int64_t in_flight_ = 0;
  bool has_run_ = false, running_ = false;
  double wall_start_ = 0;
  Kernel kernel_;  // declared last: destroyed (with plugin code in its events) first
};

}  // namespace hldlab
