/// @file recorder.hpp
/// @brief Per-system measurements: latency histogram, outcome counters, lesson metrics and
/// fault counts. Written by the simulation thread, read at any time by the exporter.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <string>
#include <vector>

#include "hldlab/lesson.hpp"
#include "hldlab/runtime/histogram.hpp"

namespace hldlab {

/// Faults the runtime applies around any system.
const std::vector<FaultSpec>& generic_faults();

class Recorder {
 public:
  /// Declares the lesson's metrics and one counter per fault (lesson and generic) up front, so
  /// that readers never see a container change.
  explicit Recorder(const LessonInfo& info);

  void record(Time latency, Outcome outcome) {
    latency_.record(latency);
    if (outcome <= Outcome::miss) answered_latency_.record(latency);
    bump(outcomes_[static_cast<int>(outcome)]);
  }
  void record_arrival() { bump(arrived_); }
  void record_fault(std::size_t index) { bump(faults_[index].count); }

  /// Latency of every completed request, whatever its outcome.
  const LatencyHistogram& latency() const { return latency_; }
  /// Latency of the requests that got an answer (ok, hit, miss): what a user waited for data.
  /// Rejections and errors are often instant and would flatter the overall quantiles.
  const LatencyHistogram& answered_latency() const { return answered_latency_; }
  std::int64_t arrived() const { return arrived_.load(std::memory_order_relaxed); }
  std::int64_t outcome(Outcome o) const {
    return outcomes_[static_cast<int>(o)].load(std::memory_order_relaxed);
  }
  std::int64_t completed() const { return latency_.count(); }

  struct LessonMetric {
    MetricSpec spec;
    Metric value;
  };
  struct FaultCount {
    std::string name;
    std::atomic<std::int64_t> count{0};
  };
  std::deque<LessonMetric>& metrics() { return metrics_; }
  const std::deque<LessonMetric>& metrics() const { return metrics_; }
  const std::deque<FaultCount>& faults() const { return faults_; }
  /// Index of a fault counter by name, or -1.
  int fault_index(const std::string& name) const;

 private:
  static void bump(std::atomic<std::int64_t>& a) {
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  LatencyHistogram latency_, answered_latency_;
  std::array<std::atomic<std::int64_t>, kOutcomeCount> outcomes_{};
  std::atomic<std::int64_t> arrived_{0};
  std::deque<LessonMetric> metrics_;
  std::deque<FaultCount> faults_;
};

}  // namespace hldlab
