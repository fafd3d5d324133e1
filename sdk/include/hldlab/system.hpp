/// @file system.hpp
/// @brief System: one variant of a lesson living in one simulation, and the requests it serves.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "hldlab/history.hpp"
#include "hldlab/sim.hpp"
#include "hldlab/value.hpp"

namespace hldlab {

/// What a request asks for.
enum class Op : std::uint8_t { read, write };

/// @brief One unit of traffic. Every System of an experiment receives the same requests.
struct Request {
  std::uint64_t id = 0;      ///< sequence number within the experiment, from 0
  std::uint64_t key = 0;     ///< object key, from the workload's key distribution
  Time arrival = 0;          ///< virtual time the request arrived
  Time service = 0;          ///< work it needs on an idle server (from the service distribution)
  std::uint32_t client = 0;  ///< client id (for affinity, per-client limits, ...)
  std::uint32_t size = 1;    ///< size in lesson units (bytes, tokens, ...)
  Op op = Op::read;
};

/// How a request ended. Latency is measured from arrival to completion. The first three are
/// answers (the runtime reports their latency separately too); keep that order.
enum class Outcome : std::uint8_t { ok, hit, miss, rejected, error, timeout };
constexpr int kOutcomeCount = 6;
inline const char* outcome_name(Outcome o) {
  static const char* names[] = {"ok", "hit", "miss", "rejected", "error", "timeout"};
  return names[static_cast<int>(o)];
}

/// @brief A lesson-declared counter or gauge. Written by the simulation thread only, read by the
/// metrics exporter at scrape time: relaxed atomics, no lock, no allocation.
class Metric {
 public:
  void add(double delta) {
    value_.store(value_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// @brief Everything a System may ask of the runtime (see SimContext for time and chance).
class Context : public SimContext {
 public:
  /// Finish `request` with `outcome`; latency = now() - request.arrival. Call exactly once per
  /// request handed to System::handle. A request never completed is reported as unfinished,
  /// its age at the system's end counted as a censored latency.
  virtual void complete(const Request& request, Outcome outcome) = 0;
  /// The metric the lesson declared under `name` (LessonInfo::metrics); throws if undeclared.
  /// Look it up once at build time and keep the reference.
  virtual Metric& metric(const std::string& name) = 0;
  /// The series `label_value` of a labelled metric (MetricSpec::label); throws if undeclared.
  virtual Metric& metric(const std::string& name, const std::string& label_value) = 0;
  /// A lesson event worth a log line ("backend 3 removed by the health check"), stamped with
  /// the virtual time by the runtime. Not for per-request use.
  virtual void log(const std::string& message) = 0;
  /// Background work that outlives the requests it came from (a charge committing after its
  /// client gave up, a replica still catching up). After the traffic stops the experiment
  /// drains until no request is in flight and every hold() has had its release() (and at most
  /// ExperimentConfig::drain). Without a hold, events still pending then never run.
  virtual void hold() = 0;
  /// Ends one hold(); throws std::logic_error without a matching hold().
  virtual void release() = 0;

  /// Message tracing, for space-time diagrams of a chosen window (`sys:trace{ from = "20s",
  /// to = "21s" }` in a script). Nothing is recorded unless a script asked for it: test
  /// tracing() before building a label.
  /// @code
  ///   if (ctx_.tracing()) ctx_.trace_message(m.from, m.to, m.sent, "AppendEntries t=" + ...);
  /// @endcode
  virtual bool tracing() const = 0;
  /// A message from node `from` to node `to`, sent at `sent` and received now.
  virtual void trace_message(int from, int to, Time sent, const std::string& label) = 0;
  /// Something that happened on `node` now (became leader, crashed, ...).
  virtual void trace_event(int node, const std::string& label) = 0;

  /// The history this system records for the checkers (`exp:add{ ..., history = true }` in a
  /// script), or nullptr when it records none: look it up once at build time (see history.hpp).
  virtual History* history() { return nullptr; }
};

/// @brief One variant of a lesson in one experiment.
///
/// The runtime calls handle() for each arriving request, call() for lesson operations from Lua
/// (`sys:call("add_node")`), inject() for lesson faults (`sys:inject("kill_backend", {...})`) and
/// figures() for lesson-specific results at the end. Exceptions thrown from any of them are
/// caught by the runtime and fail this System only, reported as "lesson/variant: message".
class System {
 public:
  virtual ~System() = default;
  /// Serve a request; complete it now or later through Context::complete.
  virtual void handle(const Request& request) = 0;
  /// A lesson operation declared in LessonInfo::operations. Arguments are a Map (maybe empty).
  virtual Value call(const std::string& op, const Value& args) {
    (void)args;
    throw std::invalid_argument("unknown operation '" + op + "'");
  }
  /// A lesson fault declared in LessonInfo::faults, with its validated parameters.
  virtual void inject(const std::string& fault, const Value& params) {
    (void)params;
    throw std::invalid_argument("unknown fault '" + fault + "'");
  }
  /// Lesson-specific result figures (shown in the figures table), e.g. {"stale_reads", 12}.
  virtual Map figures() const { return {}; }
  /// Forget the lesson's statistics (what figures() counts) but keep its state: called at the
  /// end of an experiment's warm-up. Lessons that cannot do it keep this default, and a warm-up
  /// on them is refused with a clear error.
  virtual void reset_stats() {
    throw std::logic_error("this lesson cannot reset its statistics (System::reset_stats)");
  }
};

}  // namespace hldlab
