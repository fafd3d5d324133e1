/// @file recorder.hpp
/// @brief Per-system measurements: latency histograms, outcome counters, requests still open
/// (for unfinished requests and censored quantiles), lesson metrics, fault counts, and a
/// timeline of per-window figures in virtual time. Written by the system's simulation thread,
/// read at any time by the exporter (the timeline only after the run).
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
  /// that readers never see a container change. `duration`: arrivals happen in [0, duration);
  /// `span`: the system runs at most that long (duration + drain), for the timeline.
  Recorder(const LessonInfo& info, Time duration, Time span);

  /// A request arrived (hot path).
  void record_arrival(const Request& r) {
    if (r.arrival >= window_end_) roll(r.arrival);
    ++window_.arrivals;
    ++window_in_flight_;
    if (r.arrival < from_) return;
    bump(arrived_);
    ++open_[bucket_of(r.arrival)];
  }
  /// A request completed at `now` (hot path).
  void record(const Request& r, Time now, Outcome outcome) {
    if (now >= window_end_) roll(now);
    const Time latency = now - r.arrival;
    const int index = Histogram::index_of(static_cast<std::uint64_t>(latency < 0 ? 0 : latency));
    window_latency_.record_in(index, latency);
    ++window_.outcomes[static_cast<int>(outcome)];
    --window_in_flight_;
    if (r.arrival < from_) return;
    latency_.record_in(index, latency);
    if (outcome <= Outcome::miss) answered_latency_.record_in(index, latency);
    bump(outcomes_[static_cast<int>(outcome)]);
    --open_[bucket_of(r.arrival)];
    last_completion_ = now;
  }
  /// A fault was injected at `at` (also marked on the timeline).
  void record_fault(std::size_t index, Time at, const std::string& details) {
    bump(faults_[index].count);
    fault_marks_.push_back({at, faults_[index].name, details});
  }
  /// Close the timeline's windows up to `end` (the system's end).
  void finish_timeline(Time end) {
    if (end >= window_end_) roll(end);
    close_window();
  }
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
  /// What happened in one window of the timeline, every request counted (warm-up included).
  struct Window {
    std::int64_t arrivals = 0;
    std::array<std::int64_t, kOutcomeCount> outcomes{};
    std::int64_t in_flight = 0;         ///< at the window's end
    double p50 = 0, p99 = 0, p999 = 0;  ///< seconds, of the completions in the window
  };
  struct FaultMark {
    Time at;
    std::string fault, details;
  };
  /// Width of the timeline's windows: 1 s, or a round larger width (2, 5, 10, 20, ... s) so
  /// that a run of `span` has at most 2000 windows.
  static Time window_width(Time span);
  Time window() const { return window_width_; }
  const std::vector<Window>& windows() const { return windows_; }
  /// Each lesson metric's value at the end of each window (in metrics() order).
  const std::vector<std::vector<double>>& metric_series() const { return metric_series_; }
  const std::vector<FaultMark>& fault_marks() const { return fault_marks_; }
  /// P50, P99, P99.9 (seconds) of the last closed window: what a live dashboard shows.
  double recent_quantile(int i) const { return recent_[i].load(std::memory_order_relaxed); }
  /// Completions of the last closed window with completions, and the sum of their latencies (s).
  std::int64_t recent_count() const { return recent_count_.load(std::memory_order_relaxed); }
  double recent_sum() const { return recent_sum_.load(std::memory_order_relaxed); }
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
  void roll(Time t);  // close windows until the one holding t
  void close_window();

  Histogram latency_, answered_latency_, window_latency_;
  Time window_width_ = 0, window_end_ = 0;
  Window window_;
  std::int64_t window_in_flight_ = 0;
  std::vector<Window> windows_;
  std::vector<std::vector<double>> metric_series_;
  std::vector<FaultMark> fault_marks_;
  std::array<std::atomic<double>, 3> recent_{};
  std::atomic<std::int64_t> recent_count_{0};
  std::atomic<double> recent_sum_{0};
  std::array<std::atomic<std::int64_t>, kOutcomeCount> outcomes_{};
  std::atomic<std::int64_t> arrived_{0};
  Time from_ = 0, last_completion_ = 0;
  int open_shift_ = 0;  // arrival >> open_shift_ is the bucket
  std::array<std::int64_t, kOpenBuckets> open_{};
  std::deque<LessonMetric> metrics_;
  std::deque<FaultCount> faults_;
};

}  // namespace hldlab
