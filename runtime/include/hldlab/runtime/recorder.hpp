/// @file recorder.hpp
/// @brief Per-system measurements: latency histograms, outcome counters, requests still open
/// (for unfinished requests and censored quantiles), lesson metrics and fault counts. Written
/// by the system's simulation thread, read at any time by the exporter.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/lesson.hpp"

namespace hldlab {

/// Faults the runtime applies around any system.
const std::vector<FaultSpec>& generic_faults();

class Recorder {
 public:
  /// Declares the lesson's metrics and one counter per fault (lesson and generic) up front, so
  /// that readers never see a container change. `duration`: arrivals happen in [0, duration).
  Recorder(const LessonInfo& info, Time duration);

  /// A request arrived (hot path).
  void record_arrival(const Request& r) {
    if (r.arrival < from_) return;
    bump(arrived_);
    ++open_[bucket_of(r.arrival)];
  }
  /// A request completed at `now` (hot path).
  void record(const Request& r, Time now, Outcome outcome) {
    if (r.arrival < from_) return;
    const Time latency = now - r.arrival;
    latency_.record(latency);
    if (outcome <= Outcome::miss) answered_latency_.record(latency);
    bump(outcomes_[static_cast<int>(outcome)]);
    --open_[bucket_of(r.arrival)];
    last_completion_ = now;
  }
  void record_fault(std::size_t index) { bump(faults_[index].count); }
  /// Forget what was recorded; from now on only requests arriving at or after `from` count
  /// (the end of a warm-up).
  void reset(Time from);
  Time counting_from() const { return from_; }

  /// Latency of every completed request, whatever its outcome.
  const Histogram& latency() const { return latency_; }
  /// Latency of the requests that got an answer (ok, hit, miss): what a user waited for data.
  /// Rejections and errors are often instant and would flatter the overall quantiles.
  const Histogram& answered_latency() const { return answered_latency_; }
  std::int64_t arrived() const { return arrived_.load(std::memory_order_relaxed); }
  std::int64_t outcome(Outcome o) const {
    return outcomes_[static_cast<int>(o)].load(std::memory_order_relaxed);
  }
  std::int64_t completed() const { return latency_.count(); }
  /// Time of the last completion (0 when none).
  Time last_completion() const { return last_completion_; }
  /// The requests arrived and not completed, as (lower bound of their age at `end`, count):
  /// arrival times are kept in 1024 buckets over the traffic, so an age is known to within
  /// duration / 1024 and never overstated.
  std::vector<std::pair<Time, std::int64_t>> unfinished(Time end) const;

  /// One series of a lesson metric (a labelled metric has one per label value).
  struct LessonMetric {
    MetricSpec spec;
    std::string label_value;  ///< empty for an unlabelled metric
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
  static constexpr int kOpenBuckets = 1024;
  static void bump(std::atomic<std::int64_t>& a) {
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::size_t bucket_of(Time arrival) const {
    return static_cast<std::size_t>(arrival >> open_shift_) & (kOpenBuckets - 1);
  }
  Histogram latency_, answered_latency_;
  std::array<std::atomic<std::int64_t>, kOutcomeCount> outcomes_{};
  std::atomic<std::int64_t> arrived_{0};
  Time from_ = 0, last_completion_ = 0;
  int open_shift_ = 0;  // arrival >> open_shift_ is the bucket
  std::array<std::int64_t, kOpenBuckets> open_{};
  std::deque<LessonMetric> metrics_;
  std::deque<FaultCount> faults_;
};

}  // namespace hldlab
