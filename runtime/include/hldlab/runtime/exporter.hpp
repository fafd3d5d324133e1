/// @file exporter.hpp
/// @brief Prometheus export: a prometheus-cpp Collectable that converts the recorders of the
/// registered experiments at scrape time (nothing is exported per request), and a small HTTP
/// endpoint of our own that serves it (IPv4 and IPv6, stops at once, exports nothing else).
#pragma once

#include <prometheus/collectable.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "hldlab/runtime/experiment.hpp"

#include <thread>

namespace hldlab {

/// Upper bounds (seconds) of the request duration histogram buckets: 10 per decade (1, 1.25,
/// 1.6, 2, 2.5, 3.2, 4, 5, 6.3, 8), 1 µs to 5 minutes: 86 buckets.
const std::vector<double>& latency_buckets_seconds();

/// @brief Converts every registered experiment to Prometheus metric families when scraped.
///
/// Families: hldlab_request_duration_seconds (histogram),
/// hldlab_request_duration_quantile_seconds{quantile, window} (exact quantiles: window "recent"
/// is the last closed timeline window, "run" the whole run), hldlab_requests_total{outcome},
/// hldlab_requests_arrived_total, hldlab_requests_in_flight, hldlab_cache_hits_total and
/// hldlab_cache_misses_total (only for systems that answer with hits or misses),
/// hldlab_faults_injected_total{fault} (faults injected at least once) and the lesson metrics
/// hldlab_<lesson>_<name> (counters end in _total). Labels: experiment, lesson, variant (the
/// system's label), plus outcome / fault / quantile / window / a lesson metric's own label.
class ExperimentCollector final : public prometheus::Collectable {
 public:
  /// Export `experiment` from now on (call when it starts running: its systems are fixed).
  /// An experiment whose name is already exported is labelled "name #2", "name #3", ...
  void add(std::shared_ptr<const Experiment> experiment);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Entry {
    std::string name;
    std::shared_ptr<const Experiment> experiment;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

/// The address cannot be served (bad syntax, port in use, not a local address).
class ExporterError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// @brief Serves an ExperimentCollector on http://ADDRESS/metrics (one connection at a time,
/// on a thread of its own).
class MetricsExporter {
 public:
  /// `address` is "HOST:PORT", "[IPV6]:PORT" or "PORT" (host 127.0.0.1); port 0 picks a free
  /// one. Throws std::invalid_argument for a malformed address, ExporterError with a one-line
  /// reason when it cannot listen (port in use, address not local).
  explicit MetricsExporter(const std::string& address);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  std::uint16_t port() const { return port_; }
  const std::string& host() const { return host_; }
  /// http://host:port/metrics
  std::string url() const;
  ExperimentCollector& collector() { return *collector_; }

 private:
  void serve();
  void answer(int connection);

  std::string host_;
  std::uint16_t port_ = 0;
  std::shared_ptr<ExperimentCollector> collector_;
  int listener_ = -1;
  int wake_[2] = {-1, -1};  // a pipe: writing to it stops serve()
  std::thread server_;
};

}  // namespace hldlab
