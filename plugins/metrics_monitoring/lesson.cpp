// Metrics monitoring: `targets` services report a latency metric; the monitoring system
// stores it, answers 30-day queries and alerts when a target dies.
//
//   problem:  raw_push    -> store every raw sample, labelled with the user id, pushed by the
//             targets. Storage and 30-day queries grow with the sample rate; the user label
//             makes one series per (target, user): series count and memory grow with users.
//             A dead target is noticed only when its series has been silent for `staleness`.
//   fix:      rollup_push -> pre-aggregate at ingestion into 1-minute and 1-hour buckets
//             (count, sum, min, max) per target, the user label aggregated away: bounded
//             cardinality, storage per bucket not per sample, a 30-day query reads 720 hourly
//             points. Still pushed: the same slow dead-target detection.
//   fix:      rollup_pull -> the same, scraped every `scrape_interval`: a dead target fails
//             its next scrape, so the alert comes within one interval (half on average).
//
// Model: a request is one sample (value hashed from its id, the same everywhere) of target
// key % targets by user client; it completes ok at once, or `error` when its target is dead
// (the sample is lost). Costs: sample_bytes per raw sample, bucket_bytes per rollup bucket,
// series_bytes of memory per active series; 30-day figures extrapolate the measured rates.
// `kill_target` kills a target; its alert: push when no sample came for `staleness` (checked
// every check_interval), pull at the first failed scrape (phases hashed per target). The
// workload's service time is not used.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Variant { raw_push, rollup_push, rollup_pull };

/// One rollup bucket: what a pre-aggregated point keeps.
struct Bucket {
  std::int64_t index = -1;  // minute or hour number (-1: empty)
  std::int64_t count = 0;
  double sum = 0, min = std::numeric_limits<double>::infinity(), max = 0;
};

struct Target {
  bool alive = true;
  Time died = 0;
  Time last_sample = 0;
  bool alerted = false;
  Bucket minute, hour;
};

constexpr double kMonth = 30 * 86400.0;

class Monitoring final : public System {
 public:
  Monitoring(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        targets_(p.integer<std::size_t>("targets")),
        sample_bytes_(p.integer("sample_bytes")),
        bucket_bytes_(p.integer("bucket_bytes")),
        series_bytes_(p.integer("series_bytes")),
        scrape_interval_(p.duration("scrape_interval")),
        staleness_(p.duration("staleness")),
        check_interval_(p.duration("check_interval")),
        value_salt_(ctx.salt("values")),
        series_metric_(ctx.metric("active_series")),
        stored_metric_(ctx.metric("stored_bytes")),
        alerts_metric_(ctx.metric("alerts")) {
    if (variant_ == Variant::rollup_pull) {
      const std::uint64_t phase_salt = ctx.salt("scrape phase");
      for (std::uint32_t t = 0; t < targets_.size(); ++t) {
        const double phase =
            Rng::uniform_at(phase_salt, t, 0) * static_cast<double>(scrape_interval_);
        ctx_.after(round_time(phase), [this, t] { scrape(t); });
      }
    }
  }

  void handle(const Request& r) override {
    const auto t = static_cast<std::uint32_t>(r.key % targets_.size());
    Target& target = targets_[t];
    if (!target.alive) return ctx_.complete(r, Outcome::error);           // nobody to send it
    const double value = 1 + 99 * Rng::uniform_at(value_salt_, r.id, 0);  // a latency, ms
    target.last_sample = ctx_.now();
    last_arrival_ = r.arrival;
    if (r.arrival >= counting_from_) ++samples_;
    total_ += value;
    if (variant_ == Variant::raw_push) {
      raw_bytes_ += sample_bytes_;
      if (series_.insert(static_cast<std::uint64_t>(t) << 32 | r.client).second)
        series_metric_.set(static_cast<double>(series_.size()));
    } else {
      add(target.minute, minute_of(ctx_.now()), value, false);
      add(target.hour, minute_of(ctx_.now()) / 60, value, true);
      series_metric_.set(static_cast<double>(targets_.size()));
    }
    stored_metric_.set(static_cast<double>(stored_bytes()));
    ctx_.complete(r, Outcome::ok);
  }

  void inject(const std::string&, const Value& p) override {  // "kill_target"
    const auto t = static_cast<std::size_t>(p["target"].as_int());
    if (t >= targets_.size()) throw std::invalid_argument("no target " + std::to_string(t));
    Target& target = targets_[t];
    if (!target.alive) return;
    target.alive = false;
    target.died = ctx_.now();
    ctx_.hold();  // the run goes on until the alert fires
    if (variant_ != Variant::rollup_pull && !checking_) {
      checking_ = true;
      ctx_.after(check_interval_, [this] { check_staleness(); });
    }
  }

  Map figures() const override {
    const double span = std::max(1e-9, to_seconds(last_arrival_ - counting_from_));
    const double rate = static_cast<double>(samples_) / span;  // samples per second
    const auto series = static_cast<std::int64_t>(series_count());
    const bool raw = variant_ == Variant::raw_push;
    const double month_bytes = raw ? rate * kMonth * static_cast<double>(sample_bytes_)
                                   : static_cast<double>(targets_.size()) *
                                         (kMonth / 60 + kMonth / 3600) *
                                         static_cast<double>(bucket_bytes_);
    return {
        {"samples", samples_},
        {"series", series},
        {"series_memory", series * series_bytes_},
        {"stored_bytes", stored_bytes()},
        {"bytes_30d", month_bytes},
        {"query_points_30d",
         raw ? rate / static_cast<double>(targets_.size()) * kMonth : kMonth / 3600},
        {"total", total()},
        {"alerts", alerts_},
        {"alert_delay_mean", alerts_ ? to_seconds(static_cast<Time>(alert_delays_.mean())) : 0.0},
        {"alert_delay_max", to_seconds(alert_delays_.max())}};
  }

  void reset_stats() override {
    samples_ = alerts_ = 0;  // series, storage and the data are state: they stay
    alert_delays_.reset();
    counting_from_ = last_arrival_ = ctx_.now();
  }

 private:
  static std::int64_t minute_of(Time t) { return t / seconds(60); }

  void add(Bucket& b, std::int64_t index, double value, bool hour) {
    if (b.index != index) {  // a new bucket: the previous one is written out
      if (b.index >= 0) {
        ++buckets_written_;
        if (hour) flushed_hour_sum_ += b.sum;
      }
      b = Bucket{index};
    }
    ++b.count;
    b.sum += value;
    b.min = std::min(b.min, value);
    b.max = std::max(b.max, value);
  }
  std::size_t series_count() const {
    return variant_ == Variant::raw_push ? series_.size() : targets_.size();
  }
  std::int64_t stored_bytes() const {
    if (variant_ == Variant::raw_push) return raw_bytes_;
    std::int64_t open = 0;
    for (const Target& t : targets_) open += (t.minute.index >= 0) + (t.hour.index >= 0);
    return (buckets_written_ + open) * bucket_bytes_;
  }
  /// The sum of every stored value: raw samples, or the hour buckets (closed and open).
  double total() const {
    if (variant_ == Variant::raw_push) return total_;
    double sum = 0;
    for (const Target& t : targets_) sum += t.hour.sum;
    return sum + flushed_hour_sum_;
  }

  void alert(Target& target) {
    target.alerted = true;
    ++alerts_;
    alerts_metric_.add(1);
    alert_delays_.record(ctx_.now() - target.died);
    ctx_.release();
  }

  void check_staleness() {
    bool waiting = false;
    for (Target& t : targets_) {
      if (t.alive || t.alerted) continue;
      if (ctx_.now() - t.last_sample >= staleness_)
        alert(t);
      else
        waiting = true;
    }
    checking_ = waiting;
    if (waiting) ctx_.after(check_interval_, [this] { check_staleness(); });
  }

  void scrape(std::uint32_t t) {
    Target& target = targets_[t];
    if (!target.alive && !target.alerted) alert(target);  // the scrape failed
    ctx_.after(scrape_interval_, [this, t] { scrape(t); });
  }

  Variant variant_;
  Context& ctx_;
  std::vector<Target> targets_;
  std::int64_t sample_bytes_, bucket_bytes_, series_bytes_;
  Time scrape_interval_, staleness_, check_interval_;
  std::uint64_t value_salt_;
  Metric& series_metric_;
  Metric& stored_metric_;
  Metric& alerts_metric_;
  std::unordered_set<std::uint64_t> series_;  // raw: (target, user) label sets seen
  bool checking_ = false;

  Time counting_from_ = 0, last_arrival_ = 0;  // the sample rate is measured between them
  std::int64_t samples_ = 0, raw_bytes_ = 0, buckets_written_ = 0, alerts_ = 0;
  double total_ = 0, flushed_hour_sum_ = 0;
  Histogram alert_delays_;  // ns
};

LessonInfo info() {
  return {
      "metrics_monitoring",
      "Metrics monitoring: raw samples and user-id labels explode storage and series; rollups, "
      "bounded labels and pull scraping do not",
      "Storing every raw sample makes storage and 30-day queries grow with the sample rate. A "
      "label carrying a user id creates one series per (target, user): the series count and the "
      "memory of the time-series database grow with the users (cardinality explosion). With "
      "push, a dead target is only noticed when its series has been silent for a staleness "
      "window (minutes).",
      "Pre-aggregate at ingestion into 1-minute and 1-hour rollups (count, sum, min, max): "
      "storage per bucket, not per sample, and a 30-day query reads 720 hourly points. "
      "Aggregate the user label away (or bound it): one series per target. Pull: the scraper "
      "fails to scrape a dead target and alerts within one scrape interval.",
      {"Prometheus: pull scraping (the `up` metric), recording rules, cardinality limits "
       "(sample_limit, label_limit)",
       "Thanos / Cortex / Mimir: downsampling to 5 m and 1 h for long retention",
       "Graphite / StatsD (push, carbon retention rollups), InfluxDB continuous queries",
       "Gorilla (Pelkonen et al., VLDB 2015): compressed in-memory time series at Facebook",
       "Datadog, New Relic: custom-metric cardinality billing and limits"},
      {{"raw_push", true, "every raw sample, user-id label, pushed (staleness alerting)"},
       {"rollup_push", false, "1 m + 1 h rollups per target, user label aggregated, pushed"},
       {"rollup_pull", false, "the same, scraped every scrape_interval"}},
      {{"targets", ParamType::integer, 50, "monitored services (target = key % targets)", 1, 1e6},
       {"sample_bytes", ParamType::integer, 16, "bytes per raw sample (timestamp + value)", 0, 1e6},
       {"bucket_bytes", ParamType::integer, 40,
        "bytes per rollup bucket (time, count, sum, "
        "min, max)",
        0, 1e6},
       {"series_bytes", ParamType::integer, 4096, "memory per active series (index, head chunk)", 0,
        1e9},
       {"scrape_interval", ParamType::duration, "15s", "rollup_pull: time between scrapes", 1e-3,
        86400},
       {"staleness", ParamType::duration, "5m", "push: a series silent this long is dead (alert)",
        1e-3, 86400},
       {"check_interval", ParamType::duration, "1s", "push: how often staleness is checked", 1e-3,
        86400}},
      {{"kill_target",
        "target `target` dies: its samples are lost from now on; the alert follows",
        {{"target", ParamType::integer, 0, "target id", 0, 1e6}}}},
      {},
      {{"active_series", MetricSpec::Kind::gauge, "series in the database"},
       {"stored_bytes", MetricSpec::Kind::gauge, "bytes stored"},
       {"alerts", MetricSpec::Kind::counter, "dead-target alerts fired"}},
      {{"samples", Unit::count, "samples ingested"},
       {"series", Unit::count, "series (distinct label sets)"},
       {"series_memory", Unit::bytes, "series x series_bytes"},
       {"stored_bytes", Unit::bytes, "bytes stored so far"},
       {"bytes_30d", Unit::bytes, "storage for 30 days at the measured rate"},
       {"query_points_30d", Unit::number, "points a 30-day query of one target reads"},
       {"total", Unit::number, "sum of every stored value (the same data, however stored)"},
       {"alerts", Unit::count, "dead targets alerted"},
       {"alert_delay_mean", Unit::seconds, "mean time from a target's death to its alert"},
       {"alert_delay_max", Unit::seconds, "longest time from a death to its alert"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {{"raw_push", Variant::raw_push},
                                                             {"rollup_push", Variant::rollup_push},
                                                             {"rollup_pull", Variant::rollup_pull}};
  return std::make_unique<Monitoring>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
