#include "hldlab/runtime/recorder.hpp"

#include <algorithm>

namespace hldlab {

const std::vector<FaultSpec>& generic_faults() {
  static const std::vector<FaultSpec> faults = {
      {"latency",
       "add a delay (plus uniform jitter) before the system sees each request",
       {{"delay", ParamType::duration, "100ms", "added delay", 0, 3600},
        {"jitter", ParamType::duration, "0s", "extra uniform delay in [0, jitter]", 0, 3600}}},
      {"errors",
       "fail a fraction of requests immediately with an error",
       {{"rate", ParamType::real, 0.5, "fraction of requests failed", 0, 1}}},
      {"blackhole",
       "never answer: every request times out after `timeout`",
       {{"timeout", ParamType::duration, "30s", "client timeout", 0, 3600}}},
      {"slow",
       "multiply the service time of every request",
       {{"factor", ParamType::real, 10.0, "service time multiplier", 0, 1e6}}},
  };
  return faults;
}

Time Recorder::window_width(Time span) {
  const Time limit = 2000;
  for (Time width = seconds(1);; width *= 10)
    for (Time step : {width, 2 * width, 5 * width})
      if (span / step < limit) return step;
}

Recorder::Recorder(const LessonInfo& info, Time duration, Time span)
    : window_width_(window_width(span)), window_end_(window_width_) {
  while ((Time{kOpenBuckets} << open_shift_) < duration) ++open_shift_;
  for (const MetricSpec& spec : info.metrics) {
    if (spec.label.empty()) {
      metrics_.emplace_back().spec = spec;
      continue;
    }
    for (const auto& value : spec.label_values) {
      LessonMetric& m = metrics_.emplace_back();
      m.spec = spec;
      m.label_value = value;
    }
  }
  for (const FaultSpec& f : generic_faults()) faults_.emplace_back().name = f.name;
  for (const FaultSpec& f : info.faults) faults_.emplace_back().name = f.name;
}

void Recorder::reset(Time from) {
  from_ = from;
  latency_.reset();
  answered_latency_.reset();
  for (auto& o : outcomes_) o.store(0, std::memory_order_relaxed);
  arrived_.store(0, std::memory_order_relaxed);
  open_.fill(0);
  last_completion_ = 0;
  for (auto& m : metrics_)
    if (m.spec.kind == MetricSpec::Kind::counter) m.value.set(0);
}

std::vector<std::pair<Time, std::int64_t>> Recorder::unfinished(Time end) const {
  std::vector<std::pair<Time, std::int64_t>> out;
  for (int i = 0; i < kOpenBuckets; ++i)
    if (open_[static_cast<std::size_t>(i)] > 0) {
      // The latest arrival the bucket can hold gives the smallest age.
      const Time latest = std::min(end, ((Time{i} + 1) << open_shift_) - 1);
      out.emplace_back(std::max<Time>(0, end - latest), open_[static_cast<std::size_t>(i)]);
    }
  return out;
}

void Recorder::close_window() {
  window_.in_flight = window_in_flight_;
  window_.p50 = to_seconds(window_latency_.quantile(0.5));
  window_.p99 = to_seconds(window_latency_.quantile(0.99));
  window_.p999 = to_seconds(window_latency_.quantile(0.999));
  windows_.push_back(window_);
  if (metric_series_.size() != metrics_.size()) metric_series_.resize(metrics_.size());
  for (std::size_t i = 0; i < metrics_.size(); ++i)
    metric_series_[i].push_back(metrics_[i].value.value());
  if (window_latency_.count() > 0) {
    recent_[0].store(window_.p50, std::memory_order_relaxed);
    recent_[1].store(window_.p99, std::memory_order_relaxed);
    recent_[2].store(window_.p999, std::memory_order_relaxed);
    recent_count_.store(window_latency_.count(), std::memory_order_relaxed);
    recent_sum_.store(window_latency_.sum() / 1e9, std::memory_order_relaxed);
  }
  window_ = Window{};
  window_latency_.reset();
}

void Recorder::roll(Time t) {
  while (t >= window_end_) {
    close_window();
    window_end_ += window_width_;
  }
}

int Recorder::fault_index(const std::string& name) const {
  for (std::size_t i = 0; i < faults_.size(); ++i)
    if (faults_[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace hldlab
