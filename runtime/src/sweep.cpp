#include "hldlab/runtime/sweep.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "hldlab/runtime/results.hpp"

namespace hldlab {

double student_t_975(std::size_t df) {
  // Exact to 3 decimals for df <= 30 (the usual table); beyond, the Cornish-Fisher expansion
  // around the normal quantile, within 1e-4 of the exact value.
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (df == 0) throw std::invalid_argument("student_t_975: no degrees of freedom");
  if (df <= 30) return table[df - 1];
  const double z = 1.959963984540054, n = static_cast<double>(df);
  return z + (z * z * z + z) / (4 * n) +
         (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

Stats mean_ci(const std::vector<double>& values) {
  Stats s;
  s.n = values.size();
  if (values.empty()) return s;
  double sum = 0;
  s.min = s.max = values[0];
  for (double v : values) {
    sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = sum / static_cast<double>(s.n);
  if (s.n == 1) {
    s.sd = 0;
    s.lo = s.hi = s.mean;
    return s;
  }
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.sd = std::sqrt(squares / static_cast<double>(s.n - 1));
  const double half = student_t_975(s.n - 1) * s.sd / std::sqrt(static_cast<double>(s.n));
  s.lo = s.mean - half;
  s.hi = s.mean + half;
  return s;
}

std::size_t SweepResult::points() const {
  std::size_t n = 1;
  for (const auto& [name, values] : params) n *= values.size();
  return n;
}

std::size_t SweepResult::total_runs() const {
  return points() * seeds.size();
}

Map SweepResult::point_params(std::size_t p) const {
  // The last parameter varies fastest.
  Map out;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    out[it->first] = it->second[p % it->second.size()];
    p /= it->second.size();
  }
  return out;
}

std::vector<std::string> SweepResult::figures() const {
  std::vector<std::string> out;
  for (const auto& run : runs)
    for (const auto& [name, value] : run.values)
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  return out;
}

Stats SweepResult::stats(std::size_t p, const std::string& figure) const {
  std::vector<double> values;
  const std::size_t n = seeds.size();
  for (const auto& run : runs) {
    if (run.index / n != p) continue;
    for (const auto& [name, value] : run.values)
      if (name == figure && !std::isnan(value)) values.push_back(value);
  }
  return mean_ci(values);
}

namespace {

nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

Value value_from_json(const nlohmann::json& j, const std::string& what) {
  if (j.is_boolean()) return Value(j.get<bool>());
  if (j.is_number_integer()) return Value(j.get<std::int64_t>());
  if (j.is_number()) return Value(j.get<double>());
  if (j.is_string()) return Value(j.get<std::string>());
  throw std::invalid_argument(what + ": a parameter value must be a number, a string or a boolean");
}

}  // namespace

nlohmann::json to_json(const SweepResult& s) {
  nlohmann::json out;
  out["name"] = s.name;
  out["params"] = nlohmann::json::array();
  for (const auto& [name, values] : s.params)
    out["params"].push_back({{"name", name}, {"values", to_json(Value(values))}});
  out["seeds"] = s.seeds;
  out["total_runs"] = s.total_runs();
  out["runs"] = nlohmann::json::array();
  for (const auto& run : s.runs) {
    nlohmann::json values = nlohmann::json::object();
    for (const auto& [name, v] : run.values) values[name] = number(v);
    out["runs"].push_back({{"index", run.index}, {"seed", run.seed}, {"values", values}});
  }
  if (s.runs.size() == s.total_runs()) {  // complete: each point's statistics
    out["points"] = nlohmann::json::array();
    const auto figures = s.figures();
    for (std::size_t p = 0; p < s.points(); ++p) {
      nlohmann::json point;
      point["params"] = to_json(Value(s.point_params(p)));
      for (const auto& f : figures) {
        const Stats st = s.stats(p, f);
        point["figures"][f] = {{"n", st.n},
                               {"mean", number(st.mean)},
                               {"sd", number(st.sd)},
                               {"lo", number(st.lo)},
                               {"hi", number(st.hi)},
                               {"min", number(st.min)},
                               {"max", number(st.max)}};
      }
      out["points"].push_back(point);
    }
  }
  return out;
}

nlohmann::json to_json(const std::vector<SweepResult>& sweeps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : sweeps) out.push_back(to_json(s));
  return out;
}

SweepResult sweep_from_json(const nlohmann::json& j) {
  SweepResult s;
  try {
    s.name = j.at("name").get<std::string>();
    for (const auto& p : j.at("params")) {
      List values;
      for (const auto& v : p.at("values")) values.push_back(value_from_json(v, s.name));
      s.params.emplace_back(p.at("name").get<std::string>(), values);
    }
    s.seeds = j.at("seeds").get<std::vector<std::uint64_t>>();
    for (const auto& r : j.at("runs")) {
      SweepRun run;
      run.index = r.at("index").get<std::size_t>();
      run.seed = r.at("seed").get<std::uint64_t>();
      for (const auto& [name, v] : r.at("values").items())
        run.values.emplace_back(name, v.is_null() ? std::nan("") : v.get<double>());
      s.runs.push_back(std::move(run));
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("not a sweep of hldlab: " + std::string(e.what()));
  }
  if (j.at("total_runs").get<std::size_t>() != s.total_runs())
    throw std::invalid_argument("sweep '" + s.name + "': total_runs does not match its params");
  for (const auto& run : s.runs)
    if (run.index >= s.total_runs())
      throw std::invalid_argument("sweep '" + s.name + "': run index out of range");
  return s;
}

std::vector<SweepResult> merge_sweeps(const std::vector<std::vector<SweepResult>>& parts) {
  if (parts.empty()) throw std::invalid_argument("nothing to merge");
  std::vector<SweepResult> merged = parts[0];
  for (auto& s : merged) s.runs.clear();
  for (std::size_t part = 0; part < parts.size(); ++part) {
    if (parts[part].size() != merged.size())
      throw std::invalid_argument("part " + std::to_string(part + 1) +
                                  " has another number of sweeps: not shards of one run");
    for (std::size_t i = 0; i < merged.size(); ++i) {
      const SweepResult& s = parts[part][i];
      auto definition = [](const SweepResult& x) {
        const nlohmann::json j = to_json(SweepResult{x.name, x.params, x.seeds, {}});
        return j["name"].dump() + j["params"].dump() + j["seeds"].dump();
      };
      if (definition(s) != definition(merged[i]))
        throw std::invalid_argument("sweep '" + s.name + "' of part " + std::to_string(part + 1) +
                                    " is defined differently: not shards of one run");
      merged[i].runs.insert(merged[i].runs.end(), s.runs.begin(), s.runs.end());
    }
  }
  for (auto& s : merged) {
    std::sort(s.runs.begin(), s.runs.end(),
              [](const SweepRun& a, const SweepRun& b) { return a.index < b.index; });
    for (std::size_t i = 0; i < s.runs.size(); ++i)
      if (s.runs[i].index != i)
        throw std::invalid_argument(
            "sweep '" + s.name + "': run " + std::to_string(i) +
            (i < s.runs[i].index ? " is missing (a shard not merged?)" : " appears twice"));
    if (s.runs.size() != s.total_runs())
      throw std::invalid_argument("sweep '" + s.name + "': " + std::to_string(s.runs.size()) +
                                  " of " + std::to_string(s.total_runs()) +
                                  " runs (a shard not merged?)");
  }
  return merged;
}

std::string format_sweep(const SweepResult& s) {
  const auto figures = s.figures();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  for (const auto& [name, values] : s.params) header.push_back(name);
  for (const auto& f : figures) header.push_back(f);
  rows.push_back(header);
  char buf[96];
  for (std::size_t p = 0; p < s.points(); ++p) {
    std::vector<std::string> row;
    for (const auto& [name, v] : s.point_params(p)) row.push_back(format_value(v));
    for (const auto& f : figures) {
      const Stats st = s.stats(p, f);
      std::snprintf(buf, sizeof buf, "%.4g ± %.2g", st.mean, (st.hi - st.lo) / 2);
      std::string cell = st.n ? buf : "-";
      if (st.n && st.n != s.seeds.size()) cell += " (n=" + std::to_string(st.n) + ")";
      row.push_back(cell);
    }
    rows.push_back(row);
  }
  auto shown = [](const std::string& text) {  // characters, not bytes ("±" is two)
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
  };
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], shown(row[c]));
  std::string out = "== sweep " + s.name + " (" + std::to_string(s.seeds.size()) + " seeds, " +
                    std::to_string(s.runs.size()) + " of " + std::to_string(s.total_runs()) +
                    " runs; mean ± half of the 95% confidence interval)\n";
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size()) out += std::string(width[c] - shown(row[c]) + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

}  // namespace hldlab
