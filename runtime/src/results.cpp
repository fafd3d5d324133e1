#include "hldlab/runtime/results.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
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
  for (int i = 0; i < kOutcomeCount; ++i)
    out["outcomes"][outcome_name(static_cast<Outcome>(i))] = r.outcomes[i];
  out["latency_seconds"] = {{"p50", r.p50},       {"p90", r.p90},       {"p99", r.p99},
                            {"p999", r.p999},     {"max", r.max},       {"mean", r.mean},
                            {"p50_ok", r.p50_ok}, {"p99_ok", r.p99_ok}, {"p999_ok", r.p999_ok}};
  out["throughput_rps"] = r.throughput;
  out["hit_ratio"] = r.hit_ratio < 0 ? nlohmann::json(nullptr) : nlohmann::json(r.hit_ratio);
  out["metrics"] = to_json(Value(r.metrics));
  out["figures"] = to_json(Value(r.figures));
  out["faults"] = r.faults;
  return out;
}

nlohmann::json to_json(const ExperimentResult& r) {
  nlohmann::json out;
  out["experiment"] = r.name;
  out["seed"] = r.seed;
  out["duration_seconds"] = r.duration;
  out["workload"] = r.workload;
  out["systems"] = nlohmann::json::array();
  for (const auto& s : r.systems) out["systems"].push_back(to_json(s));
  return out;
}

std::string format_seconds(double s) {
  char buf[32];
  const double a = std::abs(s);
  if (a == 0) return "0";
  if (a >= 1)
    std::snprintf(buf, sizeof buf, "%.3gs", s);
  else if (a >= 1e-3)
    std::snprintf(buf, sizeof buf, "%.3gms", s * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3gus", s * 1e6);
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

std::string format_table(const ExperimentResult& r) {
  std::vector<std::string> figure_names;  // union, in order of first appearance
  for (const auto& s : r.systems)
    for (const auto& entry : s.figures)
      if (std::find(figure_names.begin(), figure_names.end(), entry.first) == figure_names.end())
        figure_names.push_back(entry.first);
  const bool any_hits = std::any_of(r.systems.begin(), r.systems.end(),
                                    [](const SystemResult& s) { return s.hit_ratio >= 0; });
  // When some requests end without an answer (often instantly), show the P99 of the answered.
  const bool any_unanswered =
      std::any_of(r.systems.begin(), r.systems.end(), [](const SystemResult& s) {
        return s.count(Outcome::rejected) + s.count(Outcome::error) + s.count(Outcome::timeout) > 0;
      });

  std::vector<std::string> header = {"system", "kind", "p50", "p99", "p99.9", "max"};
  if (any_unanswered) header.push_back("p99 ok");
  for (const char* h : {"ok/s", "errors", "rejected", "timeouts"}) header.push_back(h);
  if (any_hits) header.push_back("hit%");
  for (const auto& f : figure_names) header.push_back(f);
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : r.systems) {
    std::vector<std::string> row = {s.label, s.naive ? "naive" : "fix"};
    if (!s.error.empty()) {
      row.push_back("FAILED: " + s.error);
      rows.push_back(row);
      continue;
    }
    char tput[32];
    std::snprintf(tput, sizeof tput, "%.1f", s.throughput);
    for (const std::string& cell : {format_seconds(s.p50), format_seconds(s.p99),
                                    format_seconds(s.p999), format_seconds(s.max)})
      row.push_back(cell);
    if (any_unanswered) row.push_back(format_seconds(s.p99_ok));
    for (const std::string& cell :
         {std::string(tput), std::to_string(s.count(Outcome::error)),
          std::to_string(s.count(Outcome::rejected)), std::to_string(s.count(Outcome::timeout))})
      row.push_back(cell);
    if (any_hits) {
      char hit[16] = "-";
      if (s.hit_ratio >= 0) std::snprintf(hit, sizeof hit, "%.1f", s.hit_ratio * 100);
      row.push_back(hit);
    }
    for (const auto& f : figure_names) {
      auto figure = s.figures.find(f);
      row.push_back(figure != s.figures.end() ? format_value(figure->second) : "-");
    }
    rows.push_back(row);
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i)
      if (row.size() == header.size() || i < 2) width[i] = std::max(width[i], row[i].size());

  std::ostringstream out;
  out << "== " << r.name << " (seed " << r.seed << ", " << r.duration << "s; " << r.workload
      << ")\n";
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const bool last = i + 1 == cells.size();
      if (i < 2)
        out << cells[i] << (last ? "" : std::string(width[i] - cells[i].size() + 2, ' '));
      else
        out << std::string(
                   i < width.size() && cells[i].size() < width[i] ? width[i] - cells[i].size() : 0,
                   ' ')
            << cells[i] << (last ? "" : "  ");
    }
    out << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
  return out.str();
}

}  // namespace hldlab
