#include "hldlab/runtime/params.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace hldlab {

Time parse_duration(const std::string& text, bool signed_offset) {
  if (signed_offset && text.size() > 1 && text[0] == '-') {
    try {
      return -parse_duration(text.substr(1));
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("'" + text +
                                  "' is not an offset: a duration, or a minus and a duration "
                                  "(try \"-10s\", \"250ms\")");
    }
  }
  auto bad = [&text](const std::string& why) {
    return std::invalid_argument("'" + text + "' is not a duration: " + why +
                                 " (try \"250ms\", \"2s\", \"1h30m\")");
  };
  if (text.empty()) throw bad("it is empty");
  if (text[0] == '-')
    throw std::invalid_argument("duration '" + text + "' must be between 0 and 31 years");
  // One or more <number><unit> parts ("1h30m", "2.5s"); a lone number is seconds.
  double ns = 0;
  const char* at = text.c_str();
  const char* end_of_text = at + text.size();
  while (at < end_of_text) {
    char* end = nullptr;
    const double number = std::strtod(at, &end);
    if (end == at || *at == '+' || *at == '-' || std::isspace(static_cast<unsigned char>(*at)))
      throw bad(at == text.c_str() ? "it does not start with a number" : "a part has no number");
    std::string unit;  // everything up to the next number
    while (end < end_of_text && !std::isdigit(static_cast<unsigned char>(*end)) && *end != '.')
      unit += *end++;
    static const std::pair<const char*, double> units[] = {
        {"ns", 1},   {"us", 1e3},   {"ms", 1e6},   {"s", 1e9},
        {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9}};
    double scale = 0;
    for (const auto& [name, factor] : units)
      if (unit == name) scale = factor;
    if (unit.empty() && at == text.c_str() && end == end_of_text) scale = 1e9;
    if (scale == 0)
      throw std::invalid_argument(
          "'" + text + "' has " +
          (unit.empty() ? std::string("a part without a unit") : "an unknown unit '" + unit + "'") +
          " (use ns, us, ms, s, m, h or d, e.g. \"1h30m\")");
    ns += number * scale;
    at = end;
  }
  if (!std::isfinite(ns) || ns < 0 || ns > 1e18)
    throw std::invalid_argument("duration '" + text + "' must be between 0 and 31 years");
  return round_time(ns);
}

Time duration_from(const Value& v, const std::string& what, bool signed_offset) {
  if (v.kind() == Value::Kind::string) return parse_duration(v.as_string(), signed_offset);
  if (v.is_number()) {
    const double s = v.as_double();
    if (signed_offset && s < 0) return -duration_from(Value(-s), what);
    if (!std::isfinite(s) || s < 0 || s > 1e9)
      throw std::invalid_argument(what + " must be a duration between 0 and 31 years");
    return round_time(s * 1e9);
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
  // Built only when something is wrong: validation runs on every sys:call.
  auto what = [&] { return owner + ": parameter '" + spec.name + "'"; };
  auto wrong_type = [&] {
    const std::string wanted = param_type_name(spec.type), got = Value::kind_name(v.kind());
    auto article = [](const std::string& word) {
      return std::string(std::strchr("aeiou", word[0]) ? "an " : "a ") + word;
    };
    return std::invalid_argument(what() + " must be " + article(wanted) + ", not " + article(got));
  };
  // `shown` is the value as the user wrote it (a duration as "20ms").
  auto check_range = [&](double x, const Value& shown) {
    if (!std::isfinite(x) || x < spec.min || x > spec.max) {
      std::ostringstream range;
      range << what() << " = " << format_param_value(spec, shown) << " is out of range ["
            << spec.min << ", " << spec.max << "]";
      throw std::invalid_argument(range.str());
    }
  };
  switch (spec.type) {
    case ParamType::integer: {
      if (!v.is_number()) throw wrong_type();
      if (v.kind() == Value::Kind::integer) {
        check_range(static_cast<double>(v.as_int()), v);
        return v;
      }
      const double d = v.as_double();
      if (!std::isfinite(d) || d != std::floor(d))
        throw std::invalid_argument(what() + " must be a whole number, not " +
                                    format_param_value(spec, v));
      check_range(d, v);
      if (std::abs(d) >= 9.2e18)
        throw std::invalid_argument(what() + " = " + format_param_value(spec, v) +
                                    " does not fit a 64-bit integer");
      return Value(static_cast<std::int64_t>(d));
    }
    case ParamType::real: {
      if (!v.is_number()) throw wrong_type();
      check_range(v.as_double(), v);
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
        throw std::invalid_argument(what() + " = \"" + v.as_string() + "\" is not one of: " + list +
                                    did_you_mean(v.as_string(), spec.choices));
      }
      return v;
    case ParamType::duration: {
      const Time t = duration_from(v, what(), spec.min < 0);  // an offset: "-10s" is behind
      check_range(static_cast<double>(t) / 1e9, Value(static_cast<std::int64_t>(t)));
      return Value(static_cast<std::int64_t>(t));
    }
    case ParamType::number_list: {
      if (v.kind() == Value::Kind::map && v.as_map().empty()) return Value(List{});  // Lua {}
      if (v.kind() != Value::Kind::list) throw wrong_type();
      List out;
      for (const Value& item : v.as_list()) {
        if (!item.is_number()) throw std::invalid_argument(what() + " must hold only numbers");
        check_range(item.as_double(), item);
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
  for (const auto& [name, value] : given) {
    (void)value;
    const bool known =
        std::any_of(specs.begin(), specs.end(),
                    [&, &name = name](const ParamSpec& s) { return s.name == name; });
    if (known) continue;
    std::vector<std::string> names;
    std::string list;
    for (const auto& s : specs) {
      names.push_back(s.name);
      list += (list.empty() ? "" : ", ") + s.name;
    }
    throw std::invalid_argument(owner + ": unknown parameter '" + name + "'" +
                                did_you_mean(name, names) +
                                (list.empty() ? "; it takes none" : "; known: " + list));
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
      out[spec.name] = coerce(spec, spec.default_value, owner);
    }
  }
  return Params(std::move(out));
}

}  // namespace hldlab
