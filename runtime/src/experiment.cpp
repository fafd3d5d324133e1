#include "hldlab/runtime/experiment.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "hldlab/runtime/params.hpp"
#include "hldlab/runtime/stop.hpp"
#include "hldlab/runtime/workers.hpp"

namespace hldlab {
namespace {

/// A run whose clock stops moving is stuck (a closed loop with no think time against an
/// instant answer, an event rescheduling itself with no delay).
constexpr std::uint64_t kMaxEventsAtOneInstant = 10'000'000;
constexpr std::uint64_t kMaxCallbacksAtOneInstant = 1'000'000;
/// Requests of the open-loop stream handed to the systems at a time.
constexpr std::size_t kChunk = 8192;
/// Rough memory of one request queued inside a system (its copy and the queue's overhead).
constexpr double kBytesPerQueuedRequest = 64;
constexpr Time kPaceSlice = milliseconds(10);

// Streams of the generic faults' per-request draws.
constexpr std::uint64_t kErrorsStream = Rng::hash_name("errors");
constexpr std::uint64_t kLatencyStream = Rng::hash_name("latency");

const ParamSpec* find_param(const std::vector<ParamSpec>& params, const std::string& name) {
  for (const ParamSpec& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

const FaultSpec* find_fault(const std::vector<FaultSpec>& faults, const std::string& name) {
  for (const FaultSpec& f : faults)
    if (f.name == name) return &f;
  return nullptr;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

double wall_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

double default_memory_budget() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 4.0 * (1ULL << 30);
  return static_cast<double>(pages) * static_cast<double>(page) / 2;
}

std::string bytes_text(double bytes) {
  std::ostringstream out;
  out.precision(3);
  if (bytes >= (1ULL << 30))
    out << bytes / (1ULL << 30) << " GiB";
  else
    out << bytes / (1ULL << 20) << " MiB";
  return out.str();
}

std::string count_text(double n) {
  std::ostringstream out;
  out.precision(3);
  if (n >= 1e6)
    out << n / 1e6 << " M";
  else
    out << n;
  return out.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SystemSlot

SystemSlot::SystemSlot(Experiment& experiment, const LoadedLesson& lesson, std::string variant,
                       std::string label, const Map& params, std::size_t history_limit)
    : experiment_(experiment),
      lesson_(lesson.lesson),
      variant_(std::move(variant)),
      label_(std::move(label)),
      rng_(Rng::derive(experiment.config().seed, Rng::hash_name(lesson.lesson->info().name.c_str()))),
      recorder_(lesson.lesson->info(), experiment.config().duration,
                experiment.config().duration + experiment.config().drain) {
  const LessonInfo& info = lesson_->info();
  const VariantSpec* spec = nullptr;
  std::vector<std::string> names;
  for (const auto& v : info.variants) {
    names.push_back(v.name);
    if (v.name == variant_) spec = &v;
  }
  if (spec == nullptr)
    throw std::invalid_argument("lesson '" + info.name + "' has no variant '" + variant_ + "'" +
                                did_you_mean(variant_, names) + "; variants: " + join(names));
  naive_ = spec->naive;
  const Params validated = validate_params(info.params, params, where());
  if (history_limit > 0) history_ = std::make_unique<History>(history_limit);
  try {
    system_ = lesson_->build(variant_, validated, *this);
  } catch (const std::exception& e) {
    throw std::runtime_error(where() + ": build failed: " + e.what());
  }
  if (!system_) throw std::runtime_error(where() + ": build returned no system");
}

SystemSlot::~SystemSlot() {
  kernel_.clear();  // the events' captures are plugin code: destroy them while it is loaded
}

const ExperimentConfig& SystemSlot::experiment_config() const {
  return experiment_.config();
}

void SystemSlot::start() {
  const ExperimentConfig& c = experiment_.config();
  memory_budget_ = (c.memory_budget > 0 ? c.memory_budget : default_memory_budget()) /
                   static_cast<double>(experiment_.systems().size());
  const Arrivals& a = experiment_.workload().arrivals;
  if (a.kind != Arrivals::Kind::closed) return;
  issued_per_client_.assign(a.clients, 0);
  for (std::uint32_t client = 0; client < a.clients; ++client)
    kernel_.at(0, [this, client] { issue(client); });
}

void SystemSlot::complete(const Request& request, Outcome outcome) {
  recorder_.record(request, now(), outcome);
  if (--in_flight_ < 0)
    throw std::logic_error("completed more requests than it received (a request completed twice?)");
  const Arrivals& a = experiment_.workload().arrivals;
  if (a.kind == Arrivals::Kind::closed) {
    const Time think = a.think.kind == Distribution::Kind::constant && a.think.a == 0
                           ? 0
                           : draw_closed_loop(experiment_.workload(), experiment_.config().seed,
                                              request.id)
                                 .think;
    kernel_.after(think, [this, client = request.client] { issue(client); });
  }
}

void SystemSlot::issue(std::uint32_t client) {
  if (now() >= experiment_.config().duration) return;
  if (static_cast<double>(++issued_) > experiment_.config().max_requests)
    throw std::runtime_error("the closed loop reached max_requests (" +
                             count_text(experiment_.config().max_requests) +
                             " requests); raise max_requests or shorten the experiment");
  const std::uint64_t id = closed_loop_id(client, issued_per_client_[client]++);
  ClosedLoopDraw d = draw_closed_loop(experiment_.workload(), experiment_.config().seed, id);
  d.request.arrival = now();
  deliver(d.request);
}

std::uint64_t SystemSlot::salt(const std::string& purpose) const {
  return Rng::derive(Rng::derive(experiment_.config().seed, Rng::hash_name(info().name.c_str())),
                     Rng::hash_name(purpose.c_str()));
}

Metric& SystemSlot::metric(const std::string& name) {
  for (auto& m : recorder_.metrics())
    if (m.spec.name == name) {
      if (!m.spec.label.empty())
        throw std::invalid_argument("metric '" + name + "' has a label (" + m.spec.label +
                                    "): use metric(name, value)");
      return m.value;
    }
  throw std::invalid_argument("metric '" + name + "' is not declared in LessonInfo::metrics");
}

Metric& SystemSlot::metric(const std::string& name, const std::string& label_value) {
  for (auto& m : recorder_.metrics())
    if (m.spec.name == name && !m.spec.label.empty() && m.label_value == label_value)
      return m.value;
  throw std::invalid_argument("metric '" + name + "' has no series " + label_value +
                              " declared in LessonInfo::metrics (label and label_values)");
}

void SystemSlot::log(const std::string& message) {
  logs_.push_back({now(), false, label_ + ": " + message});
}

void SystemSlot::hold() {
  ++holds_;
}

void SystemSlot::release() {
  if (holds_ == 0) throw std::logic_error("Context::release() without a matching hold()");
  --holds_;
}

void SystemSlot::trace(Time from, Time to, std::size_t max) {
  if (to <= from) throw std::invalid_argument("trace: `to` must be after `from`");
  if (max == 0 || max > 100000) throw std::invalid_argument("trace: max must be in [1, 100000]");
  trace_from_ = from;
  trace_to_ = to;
  trace_max_ = max;
}

void SystemSlot::trace_message(int from, int to, Time sent, const std::string& label) {
  if (!tracing()) return;
  ++traced_;
  messages_.push_back({from, to, sent, now(), label});
}

void SystemSlot::trace_event(int node, const std::string& label) {
  if (!tracing()) return;
  ++traced_;
  node_events_.push_back({node, now(), label});
}

void SystemSlot::fail(const std::string& why) {
  if (failed()) return;
  error_ = where() + ": " + why;
  logs_.push_back({now(), true, label_ + " failed: " + error_});
  finish(now());
  kernel_.clear();
}

void SystemSlot::check_memory() {
  const double used =
      static_cast<double>(in_flight_) * kBytesPerQueuedRequest + static_cast<double>(kernel_.memory_bytes());
  if (used > memory_budget_)
    throw std::runtime_error("overload: " + count_text(static_cast<double>(in_flight_)) +
                             " requests queued, memory budget " + bytes_text(memory_budget_) +
                             " for this system; lower the load or raise --memory");
}

void SystemSlot::deliver(const Request& request) {
  recorder_.record_arrival(request);
  ++in_flight_;
  if ((++delivered_ & 4095) == 0) check_memory();
  if (!faults_.any) return system_->handle(request);
  const std::uint64_t seed = experiment_.config().seed;
  if (faults_.error_rate > 0 &&
      Rng::uniform_at(seed, request.id, kErrorsStream) < faults_.error_rate)
    return complete(request, Outcome::error);
  if (faults_.blackhole_timeout >= 0) {
    const SlotHandle slot = held_.acquire();
    held_[slot] = request;
    kernel_.after(faults_.blackhole_timeout, [this, slot] {
      const Request r = held_[slot];
      held_.release(slot);
      complete(r, Outcome::timeout);
    });
    return;
  }
  Request changed = request;
  if (faults_.slow_factor != 1) changed.service = scale_time(request.service, faults_.slow_factor);
  if (faults_.delay > 0 || faults_.jitter > 0) {
    const double u = Rng::uniform_at(seed, request.id, kLatencyStream);
    const Time delay = faults_.delay + round_time(u * static_cast<double>(faults_.jitter));
    const SlotHandle slot = held_.acquire();
    held_[slot] = changed;
    kernel_.after(delay, [this, slot] {
      const Request r = held_[slot];
      held_.release(slot);
      system_->handle(r);
    });
    return;
  }
  system_->handle(changed);
}

void SystemSlot::step_event() {
  const Time t = kernel_.next_time();
  if (t != last_event_time_) {
    last_event_time_ = t;
    events_at_last_time_ = 0;
  } else if (++events_at_last_time_ > kMaxEventsAtOneInstant) {
    throw std::runtime_error(
        "the run stopped advancing: " + count_text(static_cast<double>(kMaxEventsAtOneInstant)) +
        " events at virtual time " + format_duration(t) +
        " without the clock moving (a closed loop with no think time against instant answers, or "
        "an event that reschedules itself with no delay?)");
  }
  kernel_.step();
}

void SystemSlot::run_epoch(Time until, const Request* first, const Request* last) {
  if (end_ >= 0) return;
  try {
    std::uint32_t polls = 0;
    for (;;) {
      const Time next = kernel_.next_time();
      if (first != last && first->arrival < next) {
        kernel_.advance_to(first->arrival);
        deliver(*first++);
      } else if (next < until) {
        step_event();
      } else {
        break;
      }
      if ((++polls & 1023) == 0 && stop_requested()) {
        stopped_ = true;
        return finish(now());
      }
    }
    kernel_.advance_to(until);
  } catch (const std::exception& e) {
    fail(e.what());
  }
}

void SystemSlot::drain(Time until, Time limit) {
  if (end_ >= 0) return;
  try {
    std::uint32_t polls = 0;
    while (!idle()) {
      const Time next = kernel_.next_time();
      if (next > limit) {
        kernel_.advance_to(limit);
        return finish(limit);
      }
      if (next >= until) return kernel_.advance_to(until);
      step_event();
      if ((++polls & 1023) == 0 && stop_requested()) {
        stopped_ = true;
        return finish(now());
      }
    }
    finish(now());
  } catch (const std::exception& e) {
    fail(e.what());
  }
}

void SystemSlot::inject(const std::string& fault, const Map& params) {
  if (experiment_.has_run())
    throw std::invalid_argument(where() + ": fault " + fault +
                                " injected after the run; schedule it with exp:at or sys:at");
  if (failed()) return;  // its failure is already reported
  const FaultSpec* generic = find_fault(generic_faults(), fault);
  const FaultSpec* own = find_fault(info().faults, fault);
  const auto& applicable = info().generic_faults;
  if (generic == nullptr && own == nullptr) {
    std::vector<std::string> names = applicable;
    for (const auto& f : info().faults) names.push_back(f.name);
    throw std::invalid_argument(where() + ": unknown fault '" + fault + "'" +
                                did_you_mean(fault, names) + "; faults: " + join(names));
  }
  if (own == nullptr &&
      std::find(applicable.begin(), applicable.end(), fault) == applicable.end())
    throw std::invalid_argument(
        where() + ": the generic fault '" + fault + "' does not apply to " + info().name +
        (fault == "slow" && !info().uses_service_time ? " (it does not use the service time)"
                                                       : "") +
        "; generic faults that apply: " + (applicable.empty() ? "none" : join(applicable)));
  if (own != nullptr && !own->variants.empty() &&
      std::find(own->variants.begin(), own->variants.end(), variant_) == own->variants.end())
    throw std::invalid_argument(where() + ": the fault '" + fault + "' does not apply to the " +
                                variant_ + " variant; it applies to " + join(own->variants));
  const Params p =
      validate_params((own ? own : generic)->params, params, where() + " fault " + fault);
  if (own != nullptr) {
    try {
      system_->inject(fault, Value(p.values()));
    } catch (const std::exception& e) {
      throw std::invalid_argument(where() + ": fault " + fault + ": " + e.what());
    }
  } else if (fault == "latency") {
    faults_.delay = p.duration("delay");
    faults_.jitter = p.duration("jitter");
  } else if (fault == "errors") {
    faults_.error_rate = p.real("rate");
  } else if (fault == "blackhole") {
    faults_.blackhole_timeout = p.duration("timeout");
  } else if (fault == "slow") {
    faults_.slow_factor = p.real("factor");
  }
  faults_.any = faults_.delay > 0 || faults_.jitter > 0 || faults_.error_rate > 0 ||
                faults_.blackhole_timeout >= 0 || faults_.slow_factor != 1;
  std::ostringstream shown;
  for (const auto& [k, v] : p.values()) shown << (shown.tellp() > 0 ? " " : "") << k << "=" << format_param_value(*find_param((own ? own : generic)->params, k), v);
  recorder_.record_fault(static_cast<std::size_t>(recorder_.fault_index(fault)), now(), shown.str());
  log("fault " + fault + (shown.str().empty() ? "" : " " + shown.str()));
}

void SystemSlot::clear(const std::string& fault) {
  if (experiment_.has_run())
    throw std::invalid_argument(where() + ": fault " + fault + " cleared after the run");
  if (fault == "latency")
    faults_.delay = faults_.jitter = 0;
  else if (fault == "errors")
    faults_.error_rate = 0;
  else if (fault == "blackhole")
    faults_.blackhole_timeout = -1;
  else if (fault == "slow")
    faults_.slow_factor = 1;
  else
    throw std::invalid_argument(where() +
                                ": clear() takes a generic fault (latency, errors, blackhole, "
                                "slow), not '" +
                                fault + "'");
  faults_.any = faults_.delay > 0 || faults_.jitter > 0 || faults_.error_rate > 0 ||
                faults_.blackhole_timeout >= 0 || faults_.slow_factor != 1;
  log("fault " + fault + " cleared");
}

Value SystemSlot::call(const std::string& op, const Map& args) {
  if (failed()) throw std::runtime_error(error_);
  const auto& operations = info().operations;
  const auto spec = std::find_if(operations.begin(), operations.end(),
                                 [&](const OperationSpec& o) { return o.name == op; });
  if (spec == operations.end()) {
    std::vector<std::string> names;
    for (const auto& o : operations) names.push_back(o.name);
    throw std::invalid_argument(where() + ": unknown operation '" + op + "'" +
                                did_you_mean(op, names) +
                                (names.empty() ? "; it has none" : "; operations: " + join(names)));
  }
  // An operation without parameters called without arguments needs no validation (the fast
  // path of a Lua loop polling a figure).
  const Params p = spec->params.empty() && args.empty()
                       ? Params()
                       : validate_params(spec->params, args, where() + " operation " + op);
  try {
    return system_->call(op, Value(p.values()));
  } catch (const std::exception& e) {
    throw std::invalid_argument(where() + ": " + op + ": " + e.what());
  }
}

void SystemSlot::reset_stats() {
  if (failed()) return;
  try {
    system_->reset_stats();
  } catch (const std::exception& e) {
    throw std::invalid_argument(where() + ": cannot reset statistics (a warm-up): " + e.what());
  }
  recorder_.reset(now());
}

namespace {

/// Quantiles over the completed requests plus the unfinished ones counted at their age:
/// `lower_bound` is set when an unfinished request is at or below the quantile, so that the
/// true value can only be higher.
struct CensoredQuantiles {
  std::unique_ptr<Histogram> all;
  Time min_censored = -1;
  CensoredQuantiles(const Histogram& completed, const std::vector<std::pair<Time, std::int64_t>>& open)
      : all(std::make_unique<Histogram>()) {
    all->merge(completed);
    for (const auto& [age, n] : open) {
      all->record(age, n);
      if (min_censored < 0 || age < min_censored) min_censored = age;
    }
  }
  double quantile(double q, bool& lower_bound) const {
    const Time v = q >= 1 ? all->max() : all->quantile(q);
    lower_bound = min_censored >= 0 && Histogram::index_of(static_cast<std::uint64_t>(min_censored)) <=
                                           Histogram::index_of(static_cast<std::uint64_t>(v));
    return to_seconds(v);
  }
};

/// (upper end of a bucket in seconds, cumulative fraction): a point when the fraction grew by
/// 0.5 % or the latency by 10 % since the last one, and always the last bucket.
std::vector<std::pair<double, double>> compact_cdf(const Histogram& h) {
  std::vector<std::pair<double, double>> out;
  const auto n = static_cast<double>(h.count());
  if (n == 0) return out;
  double seen = 0, last_fraction = -1, last_x = 0;
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    const auto c = h.bucket_count(i);
    if (c == 0) continue;
    seen += static_cast<double>(c);
    const double x = to_seconds(static_cast<Time>(
        std::min<std::uint64_t>(Histogram::bucket_high(i), static_cast<std::uint64_t>(h.max()))));
    const double f = seen / n;
    if (f >= 1 || f - last_fraction >= 0.005 || x >= last_x * 1.1) {
      out.emplace_back(x, f);
      last_fraction = f;
      last_x = x;
    }
    if (f >= 1) break;
  }
  return out;
}

}  // namespace

SystemResult SystemSlot::result() const {
  SystemResult r;
  r.label = label_;
  r.lesson = info().name;
  r.variant = variant_;
  r.naive = naive_;
  r.error = error_;
  r.uses_service_time = info().uses_service_time;
  const Time end = end_ >= 0 ? end_ : now();
  r.end = to_seconds(end);
  r.requests = recorder_.arrived();
  r.completed = recorder_.completed();
  r.unfinished = r.requests - r.completed;
  for (int i = 0; i < kOutcomeCount; ++i)
    r.outcomes[i] = recorder_.outcome(static_cast<Outcome>(i));
  const auto open = recorder_.unfinished(end);
  struct Figure {
    const char* name;
    double q;
    double* out;
  };
  auto fill = [&](const Histogram& h, std::initializer_list<Figure> figures) {
    const CensoredQuantiles c(h, open);
    for (const Figure& f : figures) {
      bool lower = false;
      *f.out = c.quantile(f.q, lower);
      if (lower) r.lower_bounds.push_back(f.name);
    }
    return c.all->mean() * 1e-9;
  };
  r.mean = fill(recorder_.latency(), {{"p50", 0.5, &r.p50},
                                      {"p90", 0.9, &r.p90},
                                      {"p99", 0.99, &r.p99},
                                      {"p999", 0.999, &r.p999},
                                      {"max", 1, &r.max}});
  if (!open.empty()) r.lower_bounds.push_back("mean");
  fill(recorder_.answered_latency(),
       {{"p50_ok", 0.5, &r.p50_ok}, {"p99_ok", 0.99, &r.p99_ok}, {"p999_ok", 0.999, &r.p999_ok}});
  const auto good = r.count(Outcome::ok) + r.count(Outcome::hit) + r.count(Outcome::miss);
  // Throughput: answers per second over the time the system took to give them, from the start
  // of counting to its last answer, at least the traffic's duration. A saturated server still
  // answering in the drain reports its capacity, not completions over the traffic time alone.
  const Time from = recorder_.counting_from();
  const Time span = std::max(experiment_.config().duration, recorder_.last_completion()) - from;
  r.throughput = span > 0 ? static_cast<double>(good) / to_seconds(span) : 0;
  const auto lookups = r.count(Outcome::hit) + r.count(Outcome::miss);
  if (lookups > 0) r.hit_ratio = static_cast<double>(r.count(Outcome::hit)) / lookups;
  std::vector<std::string> metric_names;
  for (const auto& m : recorder_.metrics()) {
    metric_names.push_back(m.label_value.empty()
                               ? m.spec.name
                               : m.spec.name + "{" + m.spec.label + "=" + m.label_value + "}");
    r.metrics[metric_names.back()] = m.value.value();
  }
  r.timeline_window = to_seconds(recorder_.window());
  r.timeline = recorder_.windows();
  for (std::size_t i = 0; i < recorder_.metric_series().size(); ++i)
    r.timeline_metrics.emplace_back(metric_names[i], recorder_.metric_series()[i]);
  r.fault_marks = recorder_.fault_marks();
  r.latency_cdf = compact_cdf(recorder_.latency());
  r.messages = messages_;
  r.node_events = node_events_;
  if (trace_to_ > 0) {
    r.trace_from = to_seconds(trace_from_);
    r.trace_to = to_seconds(trace_to_);
  }
  for (const auto& f : recorder_.faults())
    if (f.count > 0) r.faults[f.name] = f.count;
  if (!failed()) {
    try {
      r.figures = system_->figures();
      const auto& declared = info().figures;
      for (const auto& figure : r.figures) {
        if (declared.empty()) break;  // a lesson that declares no figure shows them unitless
        const std::string& name = figure.first;  // (clang 14 cannot capture a structured binding)
        const auto spec = std::find_if(declared.begin(), declared.end(),
                                       [&](const FigureSpec& f) { return f.name == name; });
        if (spec == declared.end())
          throw std::logic_error("figure '" + name + "' is not declared in LessonInfo::figures");
        r.figure_units[name] = spec->unit;
      }
    } catch (const std::exception& e) {
      r.error = where() + ": figures failed: " + e.what();
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Experiment

Experiment::Experiment(ExperimentConfig config) : config_(std::move(config)) {
  if (config_.duration <= 0) throw std::invalid_argument("experiment duration must be positive");
  if (config_.duration > seconds(30 * 86400.0))
    throw std::invalid_argument("experiment duration must be at most 30 days of virtual time");
  if (config_.drain < 0 || config_.drain > seconds(30 * 86400.0))
    throw std::invalid_argument("drain must be between 0 and 30 days");
  if (config_.warmup < 0 || config_.warmup >= config_.duration)
    throw std::invalid_argument("warmup must be shorter than the experiment (" +
                                format_duration(config_.duration) + ")");
  if (!(config_.max_requests >= 1 && config_.max_requests <= 1e10))
    throw std::invalid_argument("max_requests must be between 1 and 1e10");
  if (!(config_.memory_budget >= 0 && std::isfinite(config_.memory_budget)))
    throw std::invalid_argument("the memory budget must be a non-negative number of bytes");
}

Experiment::~Experiment() = default;

SystemSlot& Experiment::add(const PluginRegistry& registry, const std::string& lesson,
                            const std::string& variant, const Map& params, std::string label,
                            std::size_t history_limit) {
  if (has_run_ || running_flag_) throw std::logic_error("cannot add a system after the run started");
  if (label.empty()) label = variant;
  for (const auto& s : systems_)
    if (s->label() == label)
      throw std::invalid_argument("label '" + label +
                                  "' is already used in this experiment; give each system its own "
                                  "label (add{..., label = \"...\"})");
  systems_.push_back(
      std::make_unique<SystemSlot>(*this, registry.get(lesson), variant, std::move(label), params,
                                   history_limit));
  return *systems_.back();
}

void Experiment::set_workload(Workload workload) {
  if (has_run_ || running_flag_) throw std::logic_error("cannot change the workload after the run");
  const Arrivals& a = workload.arrivals;
  if (a.kind == Arrivals::Kind::trace) {
    if (!a.trace) throw std::invalid_argument("a trace workload needs its trace");
  } else if (a.kind == Arrivals::Kind::closed) {
    if (a.clients == 0 || a.clients > 1'000'000)
      throw std::invalid_argument("closed loop needs between 1 and 1000000 clients");
    if (a.think.exceeds_time_range())
      throw std::invalid_argument("arrivals.think " + a.think.describe() +
                                  " can draw durations beyond 292 years; give it a max");
  } else {
    for (double rate : {a.rps, a.ramp_to_rps < 0 ? 0.0 : a.ramp_to_rps})
      if (!std::isfinite(rate) || rate < 0 || rate > 1e9)
        throw std::invalid_argument("rps must be between 0 and 1e9");
    for (const auto& s : a.spikes)
      if (!std::isfinite(s.rps) || s.rps < 0 || s.rps > 1e9)
        throw std::invalid_argument("spike rps must be between 0 and 1e9");
    if (a.peak_rate() <= 0)
      throw std::invalid_argument("the workload never sends a request (rps 0)");
    const double expected = a.peak_rate() * to_seconds(config_.duration);
    if (expected > config_.max_requests) {
      std::ostringstream msg;
      msg << "the workload would send up to " << expected << " requests, more than the limit of "
          << config_.max_requests << " (lower rps or duration, or raise max_requests)";
      throw std::invalid_argument(msg.str());
    }
  }
  if (workload.service.exceeds_time_range())
    throw std::invalid_argument("workload.service " + workload.service.describe() +
                                " can draw durations beyond 292 years; give it a max "
                                "(e.g. lab.pareto{ min = \"1ms\", alpha = 0.5, max = \"1h\" })");
  if (workload.clients == 0) throw std::invalid_argument("clients must be at least 1");
  if (!(workload.write_share >= 0 && workload.write_share <= 1))
    throw std::invalid_argument("writes must be a fraction in [0, 1]");
  workload_ = std::move(workload);
}

void Experiment::at(Time t, std::function<void()> action) {
  if (has_run_) throw std::logic_error("the experiment has already run");
  if (t < 0) throw std::invalid_argument("cannot schedule an action before time 0");
  if (t >= config_.duration)
    throw std::invalid_argument("action at " + format_duration(t) +
                                " is not before the end of the experiment (" +
                                format_duration(config_.duration) + ")");
  if (running_flag_ && t < now())
    throw std::invalid_argument("action at " + format_duration(t) + " is in the past (now is " +
                                format_duration(now()) + ")");
  callbacks_.push_back({t, next_callback_seq_++, std::move(action)});
  std::push_heap(callbacks_.begin(), callbacks_.end(), [](const Callback& a, const Callback& b) {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  });
}

Time Experiment::next_callback_time() const {
  return callbacks_.empty() ? Kernel::kNever : callbacks_.front().time;
}

void Experiment::run_callbacks_at(Time t) {
  std::uint64_t ran = 0;
  while (!callbacks_.empty() && callbacks_.front().time <= t) {
    std::pop_heap(callbacks_.begin(), callbacks_.end(), [](const Callback& a, const Callback& b) {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    });
    Callback c = std::move(callbacks_.back());
    callbacks_.pop_back();
    if (++ran > kMaxCallbacksAtOneInstant)
      throw std::runtime_error("the run stopped advancing: a million callbacks at virtual time " +
                               format_duration(t) +
                               " (a callback that reschedules itself at sys.now?)");
    c.action();
    flush_logs();
  }
}

void Experiment::flush_logs() {
  struct Line {
    Time time;
    std::size_t system;
    const SystemSlot::LogLine* line;
  };
  std::vector<Line> lines;
  for (std::size_t i = 0; i < systems_.size(); ++i)
    for (const auto& l : systems_[i]->logs_) lines.push_back({l.time, i, &l});
  if (lines.empty()) return;
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    return a.time != b.time ? a.time < b.time : a.system < b.system;
  });
  for (const Line& l : lines) {
    if (l.line->error)
      spdlog::error("[{:.3f}s] {}", to_seconds(l.time), l.line->text);
    else
      spdlog::info("[{:.3f}s] {}", to_seconds(l.time), l.line->text);
  }
  for (auto& s : systems_) s->logs_.clear();
}

void Experiment::sleep_until_virtual(Time t, const RunOptions& options) const {
  if (options.pace <= 0) return;
  const double wait = wall_start_ + to_seconds(t) / options.pace - wall_seconds();
  if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
}

void Experiment::run_traffic(const RunOptions& options, Workers& workers) {
  const bool open_loop = workload_.arrivals.kind != Arrivals::Kind::closed;
  RequestStream stream(workload_, config_.duration, config_.seed);
  // The stream in chunks: `chunk` is being consumed, `ahead` is filled meanwhile by a worker.
  std::vector<Request> chunk, ahead;
  chunk.reserve(kChunk);
  ahead.reserve(kChunk);
  Time chunk_horizon = Kernel::kNever, ahead_horizon = Kernel::kNever;  // first arrival after
  bool ahead_ready = false;
  std::size_t pos = 0;
  if (open_loop) {
    stream.fill(chunk, kChunk);
    chunk_horizon = stream.next_arrival();
  }
  Time t = 0;
  while (t < config_.duration && !stop_requested()) {
    run_callbacks_at(t);
    Time until = std::min({next_callback_time(), config_.duration, chunk_horizon});
    if (options.pace > 0) until = std::min(until, t + kPaceSlice);
    std::size_t end = pos;
    while (end < chunk.size() && chunk[end].arrival < until) ++end;
    const bool fill_ahead = open_loop && !ahead_ready && chunk_horizon != Kernel::kNever;
    sleep_until_virtual(until, options);
    const Request* first = chunk.data() + pos;
    const Request* last = chunk.data() + end;
    workers.run(running_.size() + (fill_ahead ? 1 : 0), [&](std::size_t i) {
      if (i < running_.size()) return running_[i]->run_epoch(until, first, last);
      ahead.clear();
      stream.fill(ahead, kChunk);
      ahead_horizon = stream.next_arrival();
    });
    if (fill_ahead) ahead_ready = true;
    pos = end;
    t = until;
    now_.store(t, std::memory_order_relaxed);
    flush_logs();
    if (open_loop && pos == chunk.size() && t == chunk_horizon && ahead_ready) {
      chunk.swap(ahead);
      chunk_horizon = ahead_horizon;
      ahead_ready = false;
      pos = 0;
    }
  }
}

void Experiment::run_drain(const RunOptions& options, Workers& workers) {
  const Time limit = config_.duration + config_.drain;
  Time t = config_.duration;
  auto running = [this] {
    return std::any_of(running_.begin(), running_.end(), [](const auto* s) { return s->end() < 0; });
  };
  while (running() && !stop_requested()) {
    const Time until = options.pace > 0 ? std::min(limit + 1, t + kPaceSlice) : limit + 1;
    sleep_until_virtual(until, options);
    workers.run(running_.size(), [&](std::size_t i) { running_[i]->drain(until, limit); });
    t = until;
    now_.store(std::min(t, limit), std::memory_order_relaxed);
    flush_logs();
  }
}

ExperimentResult Experiment::run(const RunOptions& options) {
  if (has_run_ || running_flag_) throw std::logic_error("an experiment runs only once");
  if (systems_.empty()) throw std::invalid_argument("the experiment has no systems (use exp:add)");
  for (auto& s : systems_)
    if (active(*s)) running_.push_back(s.get());
  if (config_.warmup > 0)
    at(config_.warmup, [this] {
      for (auto* s : running_) s->reset_stats();
    });
  running_flag_ = true;
  wall_start_ = wall_seconds();
  // A thread per system, and one more drawing the next chunk of requests meanwhile (open loop).
  const bool open_loop = workload_.arrivals.kind != Arrivals::Kind::closed;
  const auto tasks = static_cast<unsigned>(running_.size() + (open_loop ? 1 : 0));
  Workers workers(std::max(1u, std::min(options.jobs, tasks)));
  try {
    for (auto* s : running_) s->start();
    run_traffic(options, workers);
    run_drain(options, workers);
  } catch (...) {
    flush_logs();
    running_flag_ = false;
    has_run_ = true;
    throw;
  }
  if (stop_requested()) {
    interrupted_ = true;
    for (auto* s : running_) s->finish(s->now());
  }
  flush_logs();
  running_flag_ = false;
  has_run_ = true;
  return results();
}

ExperimentResult Experiment::results() const {
  ExperimentResult r;
  r.name = config_.name;
  r.seed = config_.seed;
  r.duration = to_seconds(config_.duration);
  r.warmup = to_seconds(config_.warmup);
  r.interrupted = interrupted_;
  bool service_used = false;
  for (const auto& slot : systems_) service_used |= slot->info().uses_service_time;
  r.workload = workload_.describe(service_used);
  for (const auto& slot : systems_)
    if (active(*slot)) r.systems.push_back(slot->result());
  return r;
}

void Experiment::run_alone(const std::string& label) {
  if (has_run_ || running_flag_) throw std::logic_error("run_alone() must come before run()");
  if (std::none_of(systems_.begin(), systems_.end(),
                   [&](const auto& s) { return s->label() == label; }))
    throw std::invalid_argument("run_alone: no system labelled '" + label + "'");
  alone_ = label;
}

}  // namespace hldlab
