#include "hldlab/runtime/params.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace hldlab {

Time parse_duration(const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  if (end == begin || text.empty())
    throw std::invalid_argument("'" + text + "' is not a duration (try \"250ms\", \"2s\")");
  const std::string unit(end);
  double scale;
  if (unit == "ns")
    scale = 1;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "s" || unit.empty())
    scale = 1e9;
  else if (unit == "m")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  else
    throw std::invalid_argument("'" + text + "' has an unknown unit '" + unit +
                                "' (use ns, us, ms, s, m or h)");
  const double ns = number * scale;
  if (!std::isfinite(ns) || ns < 0 || ns > 1e18)
    throw std::invalid_argument("duration '" + text + "' must be between 0 and 31 years");
  return static_cast<Time>(std::llround(ns));
}

Time duration_from(const Value& v, const std::string& what) {
  if (v.kind() == Value::Kind::string) return parse_duration(v.as_string());
  if (v.is_number()) {
    const double s = v.as_double();
    if (!std::isfinite(s) || s < 0 || s > 1e9)
      throw std::invalid_argument(what + " must be a non-negative duration");
    return static_cast<Time>(std::llround(s * 1e9));
  }
  throw std::invalid_argument(what +
                              " must be a duration like \"250ms\" or a number of seconds, "
                              "not a " +
                              Value::kind_name(v.kind()));
}

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::integer:
      return "integer";
    case ParamType::real:
      return "number";
    case ParamType::boolean:
      return "boolean";
    case ParamType::string:
      return "string";
    case ParamType::duration:
      return "duration";
    case ParamType::number_list:
      return "list of numbers";
  }
  return "?";
}

std::string format_duration(Time t) {
  std::ostringstream out;
  const double v = static_cast<double>(t);
  if (t == 0)
    out << "0s";
  else if (t % 1'000'000'000 == 0 || t >= 10'000'000'000)
    out << v / 1e9 << "s";
  else if (t >= 1'000'000)
    out << v / 1e6 << "ms";
  else if (t >= 1'000)
    out << v / 1e3 << "us";
  else
    out << t << "ns";
  return out.str();
}

std::string format_param_value(const ParamSpec& spec, const Value& v) {
  std::ostringstream out;
  switch (v.kind()) {
    case Value::Kind::nil:
      return "(required)";
    case Value::Kind::boolean:
      return v.as_bool() ? "true" : "false";
    case Value::Kind::integer:
      if (spec.type == ParamType::duration) return format_duration(v.as_int());
      out << v.as_int();
      return out.str();
    case Value::Kind::real:
      out << v.as_double();
      return out.str();
    case Value::Kind::string:
      return "\"" + v.as_string() + "\"";
    case Value::Kind::list: {
      out << "{";
      for (std::size_t i = 0; i < v.as_list().size(); ++i)
        out << (i ? ", " : "") << format_param_value(spec, v.as_list()[i]);
      out << "}";
      return out.str();
    }
    case Value::Kind::map:
      return "{...}";
  }
  return "?";
}

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

Value coerce(const ParamSpec& spec, const Value& v, const std::string& owner) {
  const std::string what = owner + ": parameter '" + spec.name + "'";
  auto wrong_type = [&] {
    return std::invalid_argument(what + " must be a " + param_type_name(spec.type) + ", not a " +
                                 Value::kind_name(v.kind()));
  };
  auto check_range = [&](double x, const std::string& shown) {
    if (!std::isfinite(x) || x < spec.min || x > spec.max) {
      std::ostringstream range;
      range << what << " = " << shown << " is out of range [" << spec.min << ", " << spec.max
            << "]";
      throw std::invalid_argument(range.str());
    }
  };
  switch (spec.type) {
    case ParamType::integer: {
      if (!v.is_number()) throw wrong_type();
      const double d = v.as_double();
      if (d != std::floor(d) || std::abs(d) > 9e15)
        throw std::invalid_argument(what + " must be a whole number");
      check_range(d, format_param_value(spec, v));
      return Value(static_cast<std::int64_t>(d));
    }
    case ParamType::real: {
      if (!v.is_number()) throw wrong_type();
      check_range(v.as_double(), format_param_value(spec, v));
      return Value(v.as_double());
    }
    case ParamType::boolean:
      if (v.kind() != Value::Kind::boolean) throw wrong_type();
      return v;
    case ParamType::string:
      if (v.kind() != Value::Kind::string) throw wrong_type();
      if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(),
                                             v.as_string()) == spec.choices.end()) {
        std::string list;
        for (const auto& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
        throw std::invalid_argument(what + " = \"" + v.as_string() + "\" is not one of: " + list +
                                    did_you_mean(v.as_string(), spec.choices));
      }
      return v;
    case ParamType::duration: {
      const Time t = duration_from(v, what);
      check_range(static_cast<double>(t) / 1e9, format_duration(t));
      return Value(static_cast<std::int64_t>(t));
    }
    case ParamType::number_list: {
      if (v.kind() == Value::Kind::map && v.as_map().empty()) return Value(List{});  // Lua {}
      if (v.kind() != Value::Kind::list) throw wrong_type();
      List out;
      for (const Value& item : v.as_list()) {
        if (!item.is_number()) throw std::invalid_argument(what + " must hold only numbers");
        check_range(item.as_double(), format_param_value(spec, item));
        out.push_back(Value(item.as_double()));
      }
      return Value(std::move(out));
    }
  }
  throw wrong_type();
}

}  // namespace

std::string closest_match(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = SIZE_MAX;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(name, c);
    const std::size_t allowed = std::max<std::size_t>(2, std::max(name.size(), c.size()) / 3);
    if (d <= allowed && d < best_distance) best_distance = d, best = c;
  }
  return best;
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  const std::string best = closest_match(name, candidates);
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

Params validate_params(const std::vector<ParamSpec>& specs, const Map& given,
                       const std::string& owner) {
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  for (const auto& [name, value] : given) {
    (void)value;
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      throw std::invalid_argument(owner + ": unknown parameter '" + name + "'" +
                                  did_you_mean(name, names) +
                                  (known.empty() ? "; it takes none" : "; known: " + known));
    }
  }
  Map out;
  for (const auto& spec : specs) {
    auto it = given.find(spec.name);
    if (it != given.end()) {
      out[spec.name] = coerce(spec, it->second, owner);
    } else if (spec.default_value.is_nil()) {
      throw std::invalid_argument(owner + ": parameter '" + spec.name + "' is required (" +
                                  spec.doc + ")");
    } else {
      out[spec.name] = coerce(spec, spec.default_value, owner + " (default)");
    }
  }
  return Params(std::move(out));
}

}  // namespace hldlab
