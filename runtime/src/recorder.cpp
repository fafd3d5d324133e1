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

Recorder::Recorder(const LessonInfo& info, Time duration) {
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

int Recorder::fault_index(const std::string& name) const {
  for (std::size_t i = 0; i < faults_.size(); ++i)
    if (faults_[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace hldlab
