#include "hldlab/runtime/experiment.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "hldlab/runtime/params.hpp"

namespace hldlab {
namespace {

const FaultSpec* find_fault(const std::vector<FaultSpec>& faults, const std::string& name) {
  for (const FaultSpec& f : faults)
    if (f.name == name) return &f;
  return nullptr;
}

std::uint64_t label_hash(const std::string& label) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : label) h = (h ^ c) * 1099511628211ULL;
  return h;
}

double wall_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SystemSlot

SystemSlot::SystemSlot(Experiment& experiment, const LoadedLesson& lesson, std::string variant,
                       std::string label, const Map& params)
    : experiment_(experiment),
      lesson_(lesson.lesson),
      variant_(std::move(variant)),
      label_(std::move(label)),
      rng_(Rng::derive(experiment.config().seed, label_hash(label_))),
      fault_rng_(Rng::derive(experiment.config().seed, label_hash(label_) + 1)),
      recorder_(lesson.lesson->info()) {
  const LessonInfo& info = lesson_->info();
  const VariantSpec* spec = nullptr;
  std::vector<std::string> names;
  for (const auto& v : info.variants) {
    names.push_back(v.name);
    if (v.name == variant_) spec = &v;
  }
  if (spec == nullptr) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("lesson '" + info.name + "' has no variant '" + variant_ + "'" +
                                did_you_mean(variant_, names) + "; variants: " + known);
  }
  naive_ = spec->naive;
  const Params validated = validate_params(info.params, params, where());
  try {
    system_ = lesson_->build(variant_, validated, *this);
  } catch (const std::exception& e) {
    throw std::runtime_error(where() + ": build failed: " + e.what());
  }
  if (!system_) throw std::runtime_error(where() + ": build returned no system");
}

void SystemSlot::start_clients(std::uint32_t count) {
  client_rngs_.clear();
  for (std::uint32_t c = 0; c < count; ++c)
    client_rngs_.emplace_back(Rng::derive(experiment_.config().seed, 1'000'000 + c));
}

SystemSlot::~SystemSlot() = default;

Time SystemSlot::now() const {
  return experiment_.kernel().now();
}

void SystemSlot::after(Time delay, std::function<void()> action) {
  experiment_.kernel().after(delay, std::move(action), this);
}

void SystemSlot::complete(const Request& request, Outcome outcome) {
  recorder_.record(now() - request.arrival, outcome);
  experiment_.request_finished(*this, request);
}

Metric& SystemSlot::metric(const std::string& name) {
  for (auto& m : recorder_.metrics())
    if (m.spec.name == name) return m.value;
  throw std::invalid_argument("metric '" + name + "' is not declared in LessonInfo::metrics");
}

void SystemSlot::log(const std::string& message) {
  spdlog::info("[{:.3f}s] {}: {}", to_seconds(now()), label_, message);
}

void SystemSlot::hold() {
  ++holds_;
  experiment_.work_held(1);
}

void SystemSlot::release() {
  if (holds_ == 0) throw std::logic_error("Context::release() without a matching hold()");
  --holds_;
  experiment_.work_held(-1);
}

void SystemSlot::fail(const std::string& why) {
  if (failed()) return;
  error_ = where() + ": " + why;
  spdlog::error("[{:.3f}s] {} failed: {}", to_seconds(now()), label_, error_);
  experiment_.requests_abandoned(recorder_.arrived() - recorder_.completed() + holds_);
  holds_ = 0;
}

void SystemSlot::deliver(const Request& request) {
  if (failed()) return;
  recorder_.record_arrival();
  experiment_.request_started();
  if (!faults_.any) return handle_now(request);
  if (faults_.error_rate > 0 && fault_rng_.chance(faults_.error_rate))
    return complete(request, Outcome::error);
  if (faults_.blackhole_timeout >= 0) {
    experiment_.kernel().after(
        faults_.blackhole_timeout, [this, request] { complete(request, Outcome::timeout); }, this);
    return;
  }
  Request changed = request;
  changed.service = static_cast<Time>(static_cast<double>(request.service) * faults_.slow_factor);
  if (faults_.delay > 0 || faults_.jitter > 0) {
    const Time delay = faults_.delay + static_cast<Time>(fault_rng_.uniform() *
                                                         static_cast<double>(faults_.jitter));
    experiment_.kernel().after(
        delay, [this, changed] { handle_now(changed); }, this);
    return;
  }
  handle_now(changed);
}

void SystemSlot::handle_now(const Request& request) {
  try {
    system_->handle(request);
  } catch (const std::exception& e) {
    fail(e.what());
  } catch (...) {
    fail("unknown exception");
  }
}

void SystemSlot::inject(const std::string& fault, const Map& params) {
  if (failed()) return;
  const FaultSpec* generic = find_fault(generic_faults(), fault);
  const FaultSpec* own = find_fault(info().faults, fault);
  if (generic == nullptr && own == nullptr) {
    std::vector<std::string> names;
    for (const auto& f : generic_faults()) names.push_back(f.name);
    for (const auto& f : info().faults) names.push_back(f.name);
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument(where() + ": unknown fault '" + fault + "'" +
                                did_you_mean(fault, names) + "; faults: " + known);
  }
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
  recorder_.record_fault(static_cast<std::size_t>(recorder_.fault_index(fault)));
  std::ostringstream shown;
  for (const auto& [k, v] : p.values()) shown << " " << k << "=" << format_value(v);
  log("fault " + fault + shown.str());
}

void SystemSlot::clear(const std::string& fault) {
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
                                ": clear() takes a generic fault (latency, errors, "
                                "blackhole, slow), not '" +
                                fault + "'");
  faults_.any = faults_.delay > 0 || faults_.jitter > 0 || faults_.error_rate > 0 ||
                faults_.blackhole_timeout >= 0 || faults_.slow_factor != 1;
  log("fault " + fault + " cleared");
}

Value SystemSlot::call(const std::string& op, const Map& args) {
  if (failed()) throw std::runtime_error(error_);
  const OperationSpec* spec = nullptr;
  std::vector<std::string> names;
  for (const auto& o : info().operations) {
    names.push_back(o.name);
    if (o.name == op) spec = &o;
  }
  if (spec == nullptr) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument(where() + ": unknown operation '" + op + "'" +
                                did_you_mean(op, names) +
                                (known.empty() ? "; it has none" : "; operations: " + known));
  }
  const Params p = validate_params(spec->params, args, where() + " operation " + op);
  try {
    return system_->call(op, Value(p.values()));
  } catch (const std::exception& e) {
    throw std::invalid_argument(where() + ": " + op + ": " + e.what());
  }
}

SystemResult SystemSlot::result(Time duration) const {
  SystemResult r;
  r.label = label_;
  r.lesson = info().name;
  r.variant = variant_;
  r.naive = naive_;
  r.error = error_;
  r.requests = recorder_.arrived();
  r.completed = recorder_.completed();
  for (int i = 0; i < kOutcomeCount; ++i)
    r.outcomes[i] = recorder_.outcome(static_cast<Outcome>(i));
  const LatencyHistogram& h = recorder_.latency();
  r.p50 = to_seconds(h.quantile(0.50));
  r.p90 = to_seconds(h.quantile(0.90));
  r.p99 = to_seconds(h.quantile(0.99));
  r.p999 = to_seconds(h.quantile(0.999));
  r.max = to_seconds(h.max());
  r.mean = h.mean() * 1e-9;
  const LatencyHistogram& answered = recorder_.answered_latency();
  r.p50_ok = to_seconds(answered.quantile(0.50));
  r.p99_ok = to_seconds(answered.quantile(0.99));
  r.p999_ok = to_seconds(answered.quantile(0.999));
  const auto good = r.count(Outcome::ok) + r.count(Outcome::hit) + r.count(Outcome::miss);
  r.throughput = duration > 0 ? static_cast<double>(good) / to_seconds(duration) : 0;
  const auto lookups = r.count(Outcome::hit) + r.count(Outcome::miss);
  if (lookups > 0) r.hit_ratio = static_cast<double>(r.count(Outcome::hit)) / lookups;
  for (const auto& m : recorder_.metrics()) r.metrics[m.spec.name] = m.value.value();
  for (const auto& f : recorder_.faults())
    if (f.count > 0) r.faults[f.name] = f.count;
  if (!failed()) {
    try {
      r.figures = system_->figures();
    } catch (const std::exception& e) {
      r.error = where() + ": figures failed: " + e.what();
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Experiment

Experiment::Experiment(ExperimentConfig config)
    : config_(std::move(config)), workload_rng_(Rng::derive(config_.seed, 0)) {
  if (config_.duration <= 0) throw std::invalid_argument("experiment duration must be positive");
  if (config_.duration > seconds(30 * 86400.0))
    throw std::invalid_argument("experiment duration must be at most 30 days of virtual time");
}

Experiment::~Experiment() {
  kernel_.clear();
}

SystemSlot& Experiment::add(const PluginRegistry& registry, const std::string& lesson,
                            const std::string& variant, const Map& params, std::string label) {
  if (has_run_ || running_) throw std::logic_error("cannot add a system after the run started");
  if (label.empty()) label = variant;
  for (const auto& s : systems_)
    if (s->label() == label)
      throw std::invalid_argument("label '" + label +
                                  "' is already used in this experiment; give each system its own "
                                  "label (add{..., label = \"...\"})");
  systems_.push_back(
      std::make_unique<SystemSlot>(*this, registry.get(lesson), variant, std::move(label), params));
  return *systems_.back();
}

void Experiment::set_workload(Workload workload) {
  if (has_run_ || running_) throw std::logic_error("cannot change the workload after the run");
  const Arrivals& a = workload.arrivals;
  if (a.kind == Arrivals::Kind::closed) {
    if (a.clients == 0 || a.clients > 1'000'000)
      throw std::invalid_argument("closed loop needs between 1 and 1000000 clients");
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
          << config_.max_requests << " (lower rps or duration)";
      throw std::invalid_argument(msg.str());
    }
  }
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
                                " is not before the end of the "
                                "experiment (" +
                                format_duration(config_.duration) + ")");
  if (running_) {
    kernel_.at(t, std::move(action));
  } else {
    actions_.emplace_back(t, std::move(action));
  }
}

void Experiment::request_finished(SystemSlot& slot, const Request& request) {
  --in_flight_;
  if (workload_.arrivals.kind != Arrivals::Kind::closed) return;
  const Time think =
      static_cast<Time>(workload_.arrivals.think.sample(slot.client_rng(request.client)));
  kernel_.after(think, [s = &slot, c = request.client] { s->experiment().issue(*s, c); });
}

void Experiment::issue(SystemSlot& slot, std::uint32_t client) {
  if (kernel_.now() >= config_.duration || slot.failed()) return;
  Request r;
  r.id = slot.next_request_id();
  r.arrival = kernel_.now();
  r.client = client;
  workload_.draw(slot.client_rng(client), r);
  slot.deliver(r);
}

void Experiment::schedule_next_arrival() {
  const Arrivals& a = workload_.arrivals;
  Time t = kernel_.now();
  if (a.kind == Arrivals::Kind::poisson) {
    // Thinning (Lewis and Shedler): candidates at the peak rate, kept with rate(t) / peak.
    const double peak = a.peak_rate();
    do {
      t += static_cast<Time>(std::ceil(workload_rng_.exponential(1e9 / peak)));
      if (t >= config_.duration) return;
    } while (!workload_rng_.chance(a.rate_at(t) / peak));
  } else {
    double rate = a.rate_at(t);
    while (rate <= 0) {  // idle stretch (e.g. before a spike): look again 1 ms later
      t += milliseconds(1);
      if (t >= config_.duration) return;
      rate = a.rate_at(t);
    }
    t += std::max<Time>(1, static_cast<Time>(std::llround(1e9 / rate)));
  }
  if (t >= config_.duration) return;
  kernel_.at(t, [this] { arrive(); });
}

void Experiment::arrive() {
  Request r;
  r.id = next_request_id_++;
  r.arrival = kernel_.now();
  r.client = static_cast<std::uint32_t>(workload_rng_.below(workload_.clients));
  workload_.draw(workload_rng_, r);
  for (const auto& slot : systems_) slot->deliver(r);
  schedule_next_arrival();
}

void Experiment::advance(Time until, const RunOptions& options, bool until_idle) {
  const Time slice = milliseconds(10);
  while (!kernel_.empty() && kernel_.next_time() <= until) {
    Time stop = until;
    if (options.pace > 0) {  // let the wall clock catch up with the next slice of virtual time
      stop = std::min(until, kernel_.next_time() + slice);
      const double wait = wall_start_ + to_seconds(stop) / options.pace - wall_seconds();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    while (!kernel_.empty() && kernel_.next_time() <= stop) {
      if (until_idle && in_flight_ <= 0) return;
      kernel_.step();
    }
  }
}

ExperimentResult Experiment::run(const RunOptions& options) {
  if (has_run_ || running_) throw std::logic_error("an experiment runs only once");
  if (systems_.empty()) throw std::invalid_argument("the experiment has no systems (use exp:add)");
  running_ = true;
  wall_start_ = wall_seconds();
  for (auto& [t, action] : actions_) kernel_.at(t, std::move(action));
  actions_.clear();
  if (workload_.arrivals.kind == Arrivals::Kind::closed) {
    for (const auto& slot : systems_) slot->start_clients(workload_.arrivals.clients);
    for (const auto& slot : systems_)
      for (std::uint32_t c = 0; c < workload_.arrivals.clients; ++c)
        kernel_.at(0, [s = slot.get(), c] { s->experiment().issue(*s, c); });
  } else {
    schedule_next_arrival();
  }
  try {
    advance(config_.duration - 1, options, false);
    kernel_.advance_to(config_.duration);
    advance(config_.duration + config_.drain, options, true);
  } catch (...) {
    running_ = false;
    has_run_ = true;
    throw;
  }
  running_ = false;
  has_run_ = true;
  return results();
}

ExperimentResult Experiment::results() const {
  ExperimentResult r;
  r.name = config_.name;
  r.seed = config_.seed;
  r.duration = to_seconds(config_.duration);
  r.workload = workload_.describe();
  for (const auto& slot : systems_) r.systems.push_back(slot->result(config_.duration));
  return r;
}

}  // namespace hldlab
