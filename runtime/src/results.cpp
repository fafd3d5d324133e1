#include "hldlab/runtime/results.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace hldlab {

nlohmann::json to_json(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::nil:
      return nullptr;
    case Value::Kind::boolean:
      return v.as_bool();
    case Value::Kind::integer:
      return v.as_int();
    case Value::Kind::real:
      return std::isfinite(v.as_double()) ? nlohmann::json(v.as_double()) : nlohmann::json(nullptr);
    case Value::Kind::string:
      return v.as_string();
    case Value::Kind::list: {
      nlohmann::json out = nlohmann::json::array();
      for (const Value& item : v.as_list()) out.push_back(to_json(item));
      return out;
    }
    case Value::Kind::map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [k, item] : v.as_map()) out[k] = to_json(item);
      return out;
    }
  }
  return nullptr;
}

nlohmann::json to_json(const SystemResult& r) {
  nlohmann::json out;
  out["label"] = r.label;
  out["lesson"] = r.lesson;
  out["variant"] = r.variant;
  out["kind"] = r.naive ? "naive" : "fix";
  if (!r.error.empty()) out["error"] = r.error;
  out["requests"] = r.requests;
  out["completed"] = r.completed;
  out["unfinished"] = r.unfinished;
  out["end_seconds"] = r.end;
  for (int i = 0; i < kOutcomeCount; ++i)
    out["outcomes"][outcome_name(static_cast<Outcome>(i))] = r.outcomes[i];
  out["latency_seconds"] = {{"p50", r.p50},       {"p90", r.p90},       {"p99", r.p99},
                            {"p999", r.p999},     {"max", r.max},       {"mean", r.mean},
                            {"p50_ok", r.p50_ok}, {"p99_ok", r.p99_ok}, {"p999_ok", r.p999_ok}};
  out["lower_bounds"] = r.lower_bounds;
  out["throughput_rps"] = r.throughput;
  out["hit_ratio"] = r.hit_ratio < 0 ? nlohmann::json(nullptr) : nlohmann::json(r.hit_ratio);
  out["metrics"] = to_json(Value(r.metrics));
  out["figures"] = to_json(Value(r.figures));
  if (!r.figure_units.empty()) {
    out["figure_units"] = nlohmann::json::object();
    for (const auto& [name, unit] : r.figure_units) out["figure_units"][name] = unit_name(unit);
  }
  out["faults"] = r.faults;
  // The timeline, column by column (compact, and what a plotting tool wants).
  nlohmann::json t = {{"window_seconds", r.timeline_window}};
  auto column = [&](const char* name, auto get) {
    nlohmann::json values = nlohmann::json::array();
    for (const auto& w : r.timeline) values.push_back(get(w));
    t[name] = std::move(values);
  };
  column("arrivals", [](const Recorder::Window& w) { return w.arrivals; });
  for (int i = 0; i < kOutcomeCount; ++i)
    column(outcome_name(static_cast<Outcome>(i)), [i](const Recorder::Window& w) { return w.outcomes[i]; });
  column("in_flight", [](const Recorder::Window& w) { return w.in_flight; });
  column("p50", [](const Recorder::Window& w) { return w.p50; });
  column("p99", [](const Recorder::Window& w) { return w.p99; });
  column("p999", [](const Recorder::Window& w) { return w.p999; });
  t["metrics"] = nlohmann::json::object();
  for (const auto& [name, values] : r.timeline_metrics) t["metrics"][name] = values;
  t["faults"] = nlohmann::json::array();
  for (const auto& f : r.fault_marks)
    t["faults"].push_back({{"time", to_seconds(f.at)}, {"fault", f.fault}, {"details", f.details}});
  out["timeline"] = std::move(t);
  if (r.trace_to > 0) {
    nlohmann::json trace = {{"from", r.trace_from}, {"to", r.trace_to}};
    trace["messages"] = nlohmann::json::array();
    for (const auto& m : r.messages)
      trace["messages"].push_back({{"from", m.from}, {"to", m.to}, {"sent", to_seconds(m.sent)},
                                   {"received", to_seconds(m.received)}, {"label", m.label}});
    trace["events"] = nlohmann::json::array();
    for (const auto& e : r.node_events)
      trace["events"].push_back({{"node", e.node}, {"time", to_seconds(e.at)}, {"label", e.label}});
    out["trace"] = std::move(trace);
  }
  return out;
}

nlohmann::json to_json(const ExperimentResult& r) {
  nlohmann::json out;
  out["experiment"] = r.name;
  out["seed"] = r.seed;
  out["duration_seconds"] = r.duration;
  if (r.warmup > 0) out["warmup_seconds"] = r.warmup;
  if (r.interrupted) out["interrupted"] = true;
  out["workload"] = r.workload;
  out["systems"] = nlohmann::json::array();
  for (const auto& s : r.systems) out["systems"].push_back(to_json(s));
  return out;
}

namespace {
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}
}  // namespace

std::string timeline_csv(const std::vector<ExperimentResult>& experiments) {
  std::vector<std::string> metrics;  // the union, in order of first appearance
  for (const auto& e : experiments)
    for (const auto& s : e.systems)
      for (const auto& [name, values] : s.timeline_metrics)
        if (std::find(metrics.begin(), metrics.end(), name) == metrics.end()) metrics.push_back(name);
  std::ostringstream out;
  out.precision(9);
  out << "experiment,system,lesson,variant,window_start,window_end,arrivals";
  for (int i = 0; i < kOutcomeCount; ++i) out << "," << outcome_name(static_cast<Outcome>(i));
  out << ",in_flight,p50,p99,p999";
  for (const auto& m : metrics) out << "," << csv_field(m);
  out << "\n";
  for (const auto& e : experiments)
    for (const auto& s : e.systems)
      for (std::size_t w = 0; w < s.timeline.size(); ++w) {
        const auto& win = s.timeline[w];
        out << csv_field(e.name) << "," << csv_field(s.label) << "," << s.lesson << ","
            << s.variant << "," << static_cast<double>(w) * s.timeline_window << ","
            << static_cast<double>(w + 1) * s.timeline_window << "," << win.arrivals;
        for (auto n : win.outcomes) out << "," << n;
        out << "," << win.in_flight << "," << win.p50 << "," << win.p99 << "," << win.p999;
        for (const auto& m : metrics) {
          out << ",";
          for (const auto& [name, values] : s.timeline_metrics)
            if (name == m && w < values.size()) out << values[w];
        }
        out << "\n";
      }
  return out.str();
}

std::string format_seconds(double s) {
  // Round to three significant digits first, then pick the unit: 0.9996 s is "1s", not
  // "1e+03ms".
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", s);
  const double rounded = std::strtod(buf, nullptr);
  const double a = std::abs(rounded);
  if (a == 0) return "0";
  if (a >= 100)
    std::snprintf(buf, sizeof buf, "%.0fs", rounded);
  else if (a >= 1)
    std::snprintf(buf, sizeof buf, "%.3gs", rounded);
  else if (a >= 1e-3)
    std::snprintf(buf, sizeof buf, "%.3gms", rounded * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3gus", rounded * 1e6);
  return buf;
}

std::string format_value(const Value& v) {
  char buf[48];
  switch (v.kind()) {
    case Value::Kind::nil:
      return "-";
    case Value::Kind::boolean:
      return v.as_bool() ? "yes" : "no";
    case Value::Kind::integer:
      return std::to_string(v.as_int());
    case Value::Kind::real: {
      const double d = v.as_double();
      if (d == std::floor(d) && std::abs(d) < 1e15)
        return std::to_string(static_cast<long long>(d));
      std::snprintf(buf, sizeof buf, "%.4g", d);
      return buf;
    }
    case Value::Kind::string:
      return v.as_string();
    case Value::Kind::list:
      return "[" + std::to_string(v.as_list().size()) + " items]";
    case Value::Kind::map:
      return "{...}";
  }
  return "?";
}

const char* unit_name(Unit unit) {
  switch (unit) {
    case Unit::count:
      return "count";
    case Unit::number:
      return "number";
    case Unit::fraction:
      return "fraction";
    case Unit::seconds:
      return "seconds";
    case Unit::bytes:
      return "bytes";
    case Unit::per_second:
      return "per_second";
  }
  return "?";
}

std::string format_figure(const Value& v, Unit unit) {
  if (!v.is_number()) return format_value(v);
  const double d = v.as_double();
  char buf[48];
  switch (unit) {
    case Unit::count:
    case Unit::number:
      return format_value(v);
    case Unit::fraction:
      std::snprintf(buf, sizeof buf, "%.3g%%", d * 100);
      return buf;
    case Unit::seconds:
      return format_seconds(d);
    case Unit::bytes:
      if (std::abs(d) >= 1024.0 * 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.3g GiB", d / (1024.0 * 1024 * 1024));
      else if (std::abs(d) >= 1024.0 * 1024)
        std::snprintf(buf, sizeof buf, "%.3g MiB", d / (1024.0 * 1024));
      else if (std::abs(d) >= 1024)
        std::snprintf(buf, sizeof buf, "%.3g KiB", d / 1024);
      else
        std::snprintf(buf, sizeof buf, "%.0f B", d);
      return buf;
    case Unit::per_second:
      std::snprintf(buf, sizeof buf, "%.4g/s", d);
      return buf;
  }
  return format_value(v);
}

namespace {

/// A system's figure in its declared unit, "-" when it has none.
std::string figure_cell(const SystemResult& s, const std::string& name) {
  const auto f = s.figures.find(name);
  if (f == s.figures.end()) return "-";
  const auto unit = s.figure_units.find(name);
  return unit == s.figure_units.end() ? format_value(f->second) : format_figure(f->second, unit->second);
}

/// Columns a string takes on a terminal (UTF-8: continuation bytes take none).
std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

/// Rows of cells, the first the header; the first `left` columns left-aligned, the others right.
void print_table(std::ostringstream& out, const std::vector<std::vector<std::string>>& rows,
                 std::size_t left) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], display_width(row[i]));
    }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      const std::string pad(width[i] - display_width(row[i]), ' ');
      line += i < left ? row[i] + pad : pad + row[i];
      if (i + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

std::string latency_cell(const SystemResult& s, const char* figure, double value) {
  return (s.lower_bound(figure) ? "≥" : "") + format_seconds(value);
}

}  // namespace

std::string format_table(const ExperimentResult& r) {
  constexpr std::size_t kMaxColumns = 100;
  const bool any_hits = std::any_of(r.systems.begin(), r.systems.end(),
                                    [](const SystemResult& s) { return s.hit_ratio >= 0; });
  // When some requests end without an answer (often instantly), show the P99 of the answered.
  const bool any_unanswered =
      std::any_of(r.systems.begin(), r.systems.end(), [](const SystemResult& s) {
        return s.count(Outcome::rejected) + s.count(Outcome::error) + s.count(Outcome::timeout) +
                   s.unfinished >
               0;
      });
  const bool any_unfinished = std::any_of(r.systems.begin(), r.systems.end(),
                                          [](const SystemResult& s) { return s.unfinished > 0; });

  std::ostringstream out;
  out << "== " << r.name << " (seed " << r.seed << ", " << r.duration << "s";
  if (r.warmup > 0) out << " after a " << r.warmup << "s warm-up";
  out << "; " << r.workload << ")";
  if (r.interrupted) out << "  INTERRUPTED";
  out << "\n";

  std::vector<std::string> header = {"system", "kind", "p50", "p99", "p99.9", "max"};
  if (any_unanswered) header.push_back("p99 ok");
  for (const char* h : {"ok/s", "errors", "rejected", "timeouts"}) header.push_back(h);
  if (any_unfinished) header.push_back("unfinished");
  if (any_hits) header.push_back("hit%");
  std::vector<std::vector<std::string>> rows = {header};
  std::vector<std::string> failures;
  for (const auto& s : r.systems) {
    std::vector<std::string> row = {s.label, s.naive ? "naive" : "fix"};
    if (!s.error.empty()) failures.push_back(s.label + " FAILED: " + s.error);
    char tput[32];
    std::snprintf(tput, sizeof tput, "%.1f", s.throughput);
    for (const std::string& cell :
         {latency_cell(s, "p50", s.p50), latency_cell(s, "p99", s.p99),
          latency_cell(s, "p999", s.p999), latency_cell(s, "max", s.max)})
      row.push_back(cell);
    if (any_unanswered) row.push_back(latency_cell(s, "p99_ok", s.p99_ok));
    for (const std::string& cell :
         {std::string(tput), std::to_string(s.count(Outcome::error)),
          std::to_string(s.count(Outcome::rejected)), std::to_string(s.count(Outcome::timeout))})
      row.push_back(cell);
    if (any_unfinished) row.push_back(std::to_string(s.unfinished));
    if (any_hits) {
      char hit[16] = "-";
      if (s.hit_ratio >= 0) std::snprintf(hit, sizeof hit, "%.1f", s.hit_ratio * 100);
      row.push_back(hit);
    }
    rows.push_back(row);
  }
  print_table(out, rows, 2);

  // The lesson figures, as many columns per table as fit.
  std::vector<std::string> figure_names;  // union, in order of first appearance
  for (const auto& s : r.systems)
    for (const auto& entry : s.figures)
      if (std::find(figure_names.begin(), figure_names.end(), entry.first) == figure_names.end())
        figure_names.push_back(entry.first);
  std::size_t label_width = 6;
  for (const auto& s : r.systems) label_width = std::max(label_width, display_width(s.label));
  for (std::size_t first = 0; first < figure_names.size();) {
    std::size_t used = label_width, last = first;
    std::vector<std::vector<std::string>> table(r.systems.size() + 1);
    table[0] = {"system", ""};
    for (std::size_t i = 0; i < r.systems.size(); ++i) table[i + 1] = {r.systems[i].label, ""};
    while (last < figure_names.size()) {
      std::size_t w = display_width(figure_names[last]);
      for (const auto& s : r.systems) {
        w = std::max(w, display_width(figure_cell(s, figure_names[last])));
      }
      if (last > first && used + 2 + w > kMaxColumns) break;
      used += 2 + w;
      table[0].push_back(figure_names[last]);
      for (std::size_t i = 0; i < r.systems.size(); ++i) {
        table[i + 1].push_back(figure_cell(r.systems[i], figure_names[last]));
      }
      ++last;
    }
    for (auto& row : table) row.erase(row.begin() + 1);  // no kind column here
    out << "\n";
    print_table(out, table, 1);
    first = last;
  }
  for (const auto& f : failures) out << "  " << f << "\n";
  for (const auto& s : r.systems)
    if (s.unfinished > 0) {
      char end[32];
      std::snprintf(end, sizeof end, "%.3gs", s.end);
      out << "  warning: " << s.label << ": " << s.unfinished
          << " requests never finished (still in the system at its end, " << end
          << "); latencies marked ≥ count them at their age then\n";
    }
  return out.str();
}

}  // namespace hldlab
