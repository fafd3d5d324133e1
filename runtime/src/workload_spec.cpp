#include "hldlab/runtime/workload_spec.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>

#include "hldlab/runtime/params.hpp"
#include "hldlab/runtime/results.hpp"

namespace hldlab {
namespace {

/// Reads fields of one table and complains about the ones nobody asked for.
class Fields {
 public:
  Fields(const Value& v, std::string where) : where_(std::move(where)) {
    if (v.kind() != Value::Kind::map)
      throw std::invalid_argument(where_ + " must be a table, not a " + Value::kind_name(v.kind()));
    map_ = &v.as_map();
  }
  const Value& get(const std::string& key) {
    asked_.insert(key);
    return map_->count(key) ? map_->at(key) : nil_;
  }
  /// "x.key is required", pointing at a likely misspelling among the fields given.
  std::invalid_argument missing(const std::string& key) const {
    std::vector<std::string> unasked;
    for (const auto& entry : *map_)
      if (!asked_.count(entry.first)) unasked.push_back(entry.first);
    const std::string typo = closest_match(key, unasked);
    return std::invalid_argument(
        where_ + "." + key + " is required" +
        (typo.empty() ? "" : " (is '" + typo + "' a misspelling of '" + key + "'?)"));
  }
  bool has(const std::string& key) { return !get(key).is_nil(); }
  double number(const std::string& key, double lo, double hi, double fallback = NAN) {
    const Value& v = get(key);
    if (v.is_nil()) {
      if (std::isnan(fallback)) throw missing(key);
      return fallback;
    }
    if (!v.is_number())
      throw std::invalid_argument(where_ + "." + key + " must be a number, not a " +
                                  Value::kind_name(v.kind()));
    const double d = v.as_double();
    if (!(d >= lo && d <= hi))
      throw std::invalid_argument(where_ + "." + key + " = " + format_value(v) +
                                  " is out of range [" + format_value(Value(lo)) + ", " +
                                  format_value(Value(hi)) + "]");
    return d;
  }
  double duration_ns(const std::string& key, double fallback_ns = NAN) {
    const Value& v = get(key);
    if (v.is_nil()) {
      if (std::isnan(fallback_ns)) throw missing(key);
      return fallback_ns;
    }
    return static_cast<double>(duration_from(v, where_ + "." + key));
  }
  std::string kind(const std::vector<std::string>& allowed) {
    const Value& v = get("kind");
    if (v.kind() != Value::Kind::string)
      throw std::invalid_argument(where_ + " needs a kind (build it with lab." + allowed[0] +
                                  "{...} or similar)");
    for (const auto& a : allowed)
      if (a == v.as_string()) return a;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw std::invalid_argument(where_ + " cannot be a " + v.as_string() +
                                did_you_mean(v.as_string(), allowed) + "; use one of: " + list);
  }
  void done() {
    for (const auto& [key, value] : *map_) {
      (void)value;
      if (!asked_.count(key)) {
        std::vector<std::string> known(asked_.begin(), asked_.end());
        throw std::invalid_argument(where_ + ": unknown field '" + key + "'" +
                                    did_you_mean(key, known));
      }
    }
  }
  const std::string& where() const { return where_; }

 private:
  std::string where_;
  const Map* map_ = nullptr;
  std::set<std::string> asked_;
  Value nil_;
};

// A distribution of durations (`time`, values in ns) or of plain numbers (sizes).
Distribution parse_distribution(const Value& spec, const std::string& where, bool time) {
  if (spec.kind() != Value::Kind::map) {
    if (time) return Distribution::constant(static_cast<double>(duration_from(spec, where)));
    if (!spec.is_number())
      throw std::invalid_argument(where + " must be a number or a distribution");
    return Distribution::constant(spec.as_double());
  }
  Fields f(spec, where);
  const std::string kind =
      f.kind({"fixed", "exponential", "uniform", "lognormal", "pareto", "bimodal"});
  const bool capped = f.has("max") && kind != "uniform";
  auto amount = [&](const std::string& key) {
    return time ? f.duration_ns(key) : f.number(key, 0, 1e15);
  };
  Distribution d;
  if (kind == "fixed")
    d = Distribution::constant(amount("value"));
  else if (kind == "exponential")
    d = Distribution::exponential(amount("mean"));
  else if (kind == "uniform") {
    const double lo = amount("min"), hi = amount("max");
    if (hi < lo) throw std::invalid_argument(where + ": max must be >= min");
    d = Distribution::uniform(lo, hi);
  } else if (kind == "lognormal") {
    const double median = amount("median"), p99 = amount("p99");
    if (median <= 0 || p99 < median)
      throw std::invalid_argument(where + ": lognormal needs 0 < median <= p99");
    d = Distribution::lognormal(median, p99);
  } else if (kind == "pareto") {
    const double min = amount("min");
    if (min <= 0) throw std::invalid_argument(where + ": pareto min must be positive");
    d = Distribution::pareto(min, f.number("alpha", 0.1, 100));
  } else {
    d = Distribution::bimodal(amount("fast"), amount("slow"), f.number("slow_share", 0, 1));
  }
  if (capped) d = d.capped(amount("max"));
  f.done();
  return d;
}

KeyDistribution parse_keys(const Value& spec) {
  Fields f(spec, "keys");
  const std::string kind = f.kind({"uniform", "zipf", "hotspot"});
  const auto n = static_cast<std::uint64_t>(f.number("n", 1, 1e12));
  KeyDistribution keys = KeyDistribution::uniform(n);
  if (kind == "zipf") keys = KeyDistribution::zipf(n, f.number("s", 0, 20));
  if (kind == "hotspot")
    keys = KeyDistribution::hotspot(n, f.number("hot_keys", 1e-12, 1), f.number("hot_share", 0, 1));
  f.done();
  return keys;
}

Arrivals parse_trace(Fields& f, const DataFiles& data_files) {
  Arrivals a;
  a.kind = Arrivals::Kind::trace;
  auto trace = std::make_shared<TraceSpec>();
  const Value& file = f.get("file");
  if (file.kind() != Value::Kind::string)
    throw std::invalid_argument("arrivals.file must name the trace (a string)");
  if (!data_files)
    throw std::invalid_argument("a trace needs a data directory: run with --data DIR");
  trace->file = data_files(file.as_string());
  if (f.has("format")) {
    const Value& format = f.get("format");
    if (format == Value("csv"))
      trace->format = TraceSpec::Format::csv;
    else if (format == Value("oracleGeneral"))
      trace->format = TraceSpec::Format::oracle_general;
    else
      throw std::invalid_argument("arrivals.format must be \"csv\" or \"oracleGeneral\"");
  }
  if (f.has("columns")) {
    if (trace->format != TraceSpec::Format::csv)
      throw std::invalid_argument("arrivals.columns is for csv traces only");
    Fields c(f.get("columns"), "arrivals.columns");
    trace->key_column = static_cast<int>(c.number("key", 1, 1000));
    trace->time_column = static_cast<int>(c.number("time", 0, 1000, 0));
    trace->size_column = static_cast<int>(c.number("size", 0, 1000, 0));
    trace->op_column = static_cast<int>(c.number("op", 0, 1000, 0));
    c.done();
  }
  if (f.has("has_header")) {
    if (f.get("has_header").kind() != Value::Kind::boolean)
      throw std::invalid_argument("arrivals.has_header must be true or false");
    trace->has_header = f.get("has_header").as_bool();
  }
  if (f.has("delimiter")) {
    const Value& d = f.get("delimiter");
    if (d.kind() != Value::Kind::string || d.as_string().size() != 1)
      throw std::invalid_argument("arrivals.delimiter must be one character");
    trace->delimiter = d.as_string()[0];
  }
  if (f.has("time_unit")) {
    static const std::pair<const char*, double> units[] = {
        {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}};
    const Value& u = f.get("time_unit");
    bool known = false;
    for (const auto& [name, ns] : units)
      if (u == Value(name)) trace->time_unit_ns = ns, known = true;
    if (!known) throw std::invalid_argument("arrivals.time_unit must be s, ms, us or ns");
  }
  trace->rps = f.number("rps", 0, 1e9, 0);
  if (trace->format == TraceSpec::Format::csv && trace->time_column == 0 && trace->rps == 0)
    throw std::invalid_argument(
        "arrivals: a csv trace without a time column needs rps (the rate to replay it at)");
  TraceReader probe(*trace);  // the file opens and its first record reads
  TraceRecord first;
  probe.next(first);
  a.trace = std::move(trace);
  f.done();
  return a;
}

Arrivals parse_arrivals(const Value& spec, const DataFiles& data_files) {
  Fields f(spec, "arrivals");
  const std::string kind = f.kind({"poisson", "constant", "closed", "trace"});
  if (kind == "trace") return parse_trace(f, data_files);
  Arrivals a;
  if (kind == "closed") {
    a.kind = Arrivals::Kind::closed;
    a.clients = static_cast<std::uint32_t>(f.number("clients", 1, 1e6));
    a.think = f.has("think") ? parse_distribution(f.get("think"), "arrivals.think", true)
                             : Distribution::constant(0);
    f.done();
    return a;
  }
  a.kind = kind == "poisson" ? Arrivals::Kind::poisson : Arrivals::Kind::constant;
  a.rps = f.number("rps", 0, 1e9);
  if (f.has("ramp")) {
    Fields r(f.get("ramp"), "arrivals.ramp");
    a.ramp_to_rps = r.number("to", 0, 1e9);
    a.ramp_start = static_cast<Time>(r.duration_ns("start", 0));
    a.ramp_end = static_cast<Time>(r.duration_ns("finish"));
    if (a.ramp_end < a.ramp_start)
      throw std::invalid_argument("arrivals.ramp: finish must not be before start");
    r.done();
  }
  if (f.has("spikes")) {
    const Value& spikes = f.get("spikes");
    if (spikes.kind() != Value::Kind::list)
      throw std::invalid_argument("arrivals.spikes must be a list of {at=, duration=, rps=}");
    for (std::size_t i = 0; i < spikes.as_list().size(); ++i) {
      Fields s(spikes.as_list()[i], "arrivals.spikes[" + std::to_string(i + 1) + "]");
      const auto start = static_cast<Time>(s.duration_ns("at"));
      a.spikes.push_back(
          {start, start + static_cast<Time>(s.duration_ns("duration")), s.number("rps", 0, 1e9)});
      s.done();
    }
  }
  f.done();
  return a;
}

}  // namespace

Distribution parse_time_distribution(const Value& spec, const std::string& where) {
  return parse_distribution(spec, where, true);
}

Workload parse_workload(const Value& spec, const DataFiles& data_files) {
  Fields f(spec, "workload");
  Workload w;
  if (!f.has("arrivals"))
    throw std::invalid_argument("workload.arrivals is required (e.g. lab.poisson{rps = 100})");
  w.arrivals = parse_arrivals(f.get("arrivals"), data_files);
  if (f.has("keys")) w.keys = parse_keys(f.get("keys"));
  if (f.has("service")) w.service = parse_distribution(f.get("service"), "workload.service", true);
  w.clients = static_cast<std::uint32_t>(f.number("clients", 1, 1e9, 1000));
  w.write_share = f.number("writes", 0, 1, 0);
  if (f.has("sizes")) {
    w.has_sizes = true;
    w.sizes = parse_distribution(f.get("sizes"), "workload.sizes", false);
  }
  f.done();
  return w;
}

}  // namespace hldlab

namespace hldlab {

std::string resolve_data_file(const std::string& name, const std::vector<std::string>& dirs) {
  namespace fs = std::filesystem;
  if (dirs.empty())
    throw std::invalid_argument("the trace '" + name +
                                "' needs a data directory: run with --data DIR (the sandbox opens "
                                "files only under the directories given with --data)");
  std::error_code ec;
  for (const auto& dir : dirs) {
    const fs::path root = fs::canonical(dir, ec);
    if (ec) continue;
    const fs::path candidate = fs::path(name).is_absolute() ? fs::path(name) : root / name;
    const fs::path real = fs::canonical(candidate, ec);
    if (ec) continue;
    const auto [end, _] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
    if (end == root.end() && fs::is_regular_file(real, ec)) return real.string();
  }
  std::string list;
  for (const auto& d : dirs) list += (list.empty() ? "" : ", ") + d;
  throw std::invalid_argument("the trace '" + name + "' is not a file under a --data directory (" +
                              list + ")");
}

}  // namespace hldlab
