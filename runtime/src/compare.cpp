#include "hldlab/runtime/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

namespace hldlab {
namespace {

/// Which way a figure gets worse.
enum class Worse { up, down, either };

struct Figure {
  double value = NAN;
  Worse worse = Worse::either;
};

/// "script/experiment/system" -> figure name -> value, from a run's or a tour's JSON.
using Figures = std::map<std::string, std::map<std::string, Figure>>;

void add_script(const nlohmann::json& script, const std::string& prefix, Figures& out) {
  if (!script.is_object() || !script.contains("experiments") || !script["experiments"].is_array())
    throw std::invalid_argument("not hldlab results (no \"experiments\")");
  std::map<std::string, int> seen;  // the same experiment name twice: number them
  for (const auto& e : script["experiments"]) {
    std::string name = e.value("experiment", "?");
    if (const int n = seen[name]++; n > 0) name += " #" + std::to_string(n + 1);
    for (const auto& s : e.at("systems")) {
      auto& f = out[prefix + name + " / " + s.value("label", "?")];
      auto put = [&f](const std::string& key, const nlohmann::json& v, Worse worse) {
        if (v.is_number()) f[key] = {v.get<double>(), worse};
      };
      for (const auto& [k, v] : s.at("latency_seconds").items()) put(k, v, Worse::up);
      put("throughput_rps", s.at("throughput_rps"), Worse::down);
      put("hit_ratio", s.value("hit_ratio", nlohmann::json()), Worse::down);
      put("completed", s.at("completed"), Worse::down);
      put("unfinished", s.at("unfinished"), Worse::up);
      for (const char* o : {"error", "timeout", "rejected"})
        if (s.contains("outcomes")) put(o, s["outcomes"].value(o, nlohmann::json()), Worse::up);
      if (s.contains("figures"))
        for (const auto& [k, v] : s["figures"].items()) put(k, v, Worse::either);
    }
  }
}

Figures figures_of(const nlohmann::json& results) {
  Figures out;
  if (results.contains("experiments")) {
    add_script(results, "", out);
  } else {  // a tour: lesson -> script results
    if (!results.is_object() || results.empty())
      throw std::invalid_argument("not hldlab results (neither a run's nor a tour's JSON)");
    for (const auto& [lesson, script] : results.items()) add_script(script, lesson + ": ", out);
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Comparison compare_results(const nlohmann::json& base, const nlohmann::json& now, double threshold,
                           bool all) {
  const Figures a = figures_of(base), b = figures_of(now);
  Comparison c;
  std::vector<std::vector<std::string>> rows = {{"system", "figure", "base", "new", "change", ""}};
  std::map<std::string, bool> systems;
  for (const auto& [s, f] : a) systems[s] = true;
  for (const auto& [s, f] : b) systems[s] = true;
  for (const auto& [system, unused] : systems) {
    const auto in_a = a.find(system), in_b = b.find(system);
    if (in_b == b.end()) {
      rows.push_back({system, "(system)", "present", "missing", "", "REGRESSION"});
      ++c.regressions;
      continue;
    }
    if (in_a == a.end()) {
      rows.push_back({system, "(system)", "missing", "present", "", "new"});
      continue;
    }
    std::map<std::string, bool> names;
    for (const auto& [n, v] : in_a->second) names[n] = true;
    for (const auto& [n, v] : in_b->second) names[n] = true;
    for (const auto& [name, u] : names) {
      const auto fa = in_a->second.find(name), fb = in_b->second.find(name);
      if (fb == in_b->second.end()) {
        rows.push_back({system, name, number(fa->second.value), "missing", "", "REGRESSION"});
        ++c.regressions;
        continue;
      }
      if (fa == in_a->second.end()) {
        rows.push_back({system, name, "missing", number(fb->second.value), "", "new"});
        continue;
      }
      ++c.compared;
      const double x = fa->second.value, y = fb->second.value;
      const double change = x == y ? 0 : x == 0 ? INFINITY : (y - x) / std::abs(x);
      std::string shown = "0";
      if (change != 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%+.1f%%", change * 100);
        shown = std::isinf(change) ? (y > x ? "+inf" : "-inf") : buf;
      }
      std::string marker;
      if (std::abs(change) > threshold) {
        ++c.beyond;
        const Worse w = fa->second.worse;
        const bool worse =
            w == Worse::either || (w == Worse::up && y > x) || (w == Worse::down && y < x);
        marker = worse ? "REGRESSION" : "better";
        c.regressions += worse;
      }
      if (all || !marker.empty())
        rows.push_back({system, name, number(x), number(y), shown, marker});
    }
  }
  if (rows.size() == 1) return c;  // nothing to show
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i)
      line += r[i] + (i + 1 < r.size() ? std::string(width[i] - r[i].size() + 2, ' ') : "");
    while (!line.empty() && line.back() == ' ') line.pop_back();
    c.table += line + "\n";
  }
  return c;
}

}  // namespace hldlab
