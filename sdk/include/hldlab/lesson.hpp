/// @file lesson.hpp
/// @brief Lesson metadata (problem, fix, variants, parameter schema, faults, metrics) and the
/// factory that builds Systems.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/system.hpp"
#include "hldlab/value.hpp"

namespace hldlab {

/// Type of a parameter. `duration` accepts "20ms", "1.5s", "2m" or a number of seconds and is
/// handed to the plugin as nanoseconds; `number_list` is a list of numbers.
enum class ParamType { integer, real, boolean, string, duration, number_list };

/// @brief One typed parameter with its default, bounds and documentation.
struct ParamSpec {
  std::string name;
  ParamType type = ParamType::integer;
  Value default_value;  ///< nil = required
  std::string doc;
  double min = -1e300;  ///< inclusive bounds for integer / real / duration (seconds)
  double max = 1e300;
  std::vector<std::string> choices = {};  ///< allowed values for a string parameter (empty = any)
};

/// A variant of the lesson: the naive screw-up or one of the fixes.
struct VariantSpec {
  std::string name;
  bool naive = false;
  std::string summary;
};

/// A lesson fault (the generic latency/errors/blackhole/slow faults are the runtime's).
struct FaultSpec {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
  /// The variants it applies to (empty: every variant). Injecting it into another variant is an
  /// error that names these (a relay crash means nothing where there is no relay).
  std::vector<std::string> variants = {};
};

/// A lesson operation callable from Lua with sys:call(name, args).
struct OperationSpec {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
};

/// A lesson metric, exported as hldlab_<lesson>_<name> (counters get the `_total` suffix).
/// With a `label`, it is one series per value of `label_values`, exported with the label
/// (hldlab_circuit_breaker_state{downstream="0"}) and looked up with
/// Context::metric(name, value).
struct MetricSpec {
  enum class Kind { counter, gauge };
  std::string name;
  Kind kind = Kind::counter;
  std::string help;
  std::string label = "";
  std::vector<std::string> label_values = {};
};

/// How a figure is shown: counts and plain numbers as they are, fractions (0..1) as a
/// percentage, durations in seconds as "12.3ms", bytes as "1.5 MiB", rates as "123/s".
enum class Unit { count, number, fraction, seconds, bytes, per_second };

/// A figure the lesson reports in System::figures(): its unit and what it means.
struct FigureSpec {
  std::string name;
  Unit unit = Unit::count;
  std::string doc;
};

/// @brief Everything `hldlab info <lesson>` shows, and what the runtime validates against.
struct LessonInfo {
  std::string name;                     ///< identifier: lowercase, digits, underscores
  std::string title;                    ///< one line
  std::string problem;                  ///< the screw-up, in a few sentences
  std::string fix;                      ///< the fix, in a few sentences
  std::vector<std::string> production;  ///< where it is used in production
  std::vector<VariantSpec> variants;
  std::vector<ParamSpec> params;
  std::vector<FaultSpec> faults;
  std::vector<OperationSpec> operations;
  std::vector<MetricSpec> metrics;
  /// Every figure System::figures() may report (reporting an undeclared one is an error).
  std::vector<FigureSpec> figures = {};
  /// Whether the lesson uses the workload's service time (Request::service). When it does not,
  /// the report does not print one and the generic `slow` fault does not apply.
  bool uses_service_time = true;
  /// The runtime's generic faults (latency, errors, blackhole, slow) that change this lesson's
  /// results. Injecting another one is an error that names these. By default every one that
  /// applies: `slow` only when the lesson uses the service time.
  std::vector<std::string> generic_faults =
      uses_service_time ? std::vector<std::string>{"latency", "errors", "blackhole", "slow"}
                        : std::vector<std::string>{"latency", "errors", "blackhole"};
};

/// @brief Validated parameters: every declared parameter present, with the declared type.
class Params {
 public:
  Params() = default;
  explicit Params(Map values) : values_(std::move(values)) {}
  /// An integer parameter, as `T` when asked: `p.integer<int>("workers")`. A value that `T`
  /// cannot hold is an error, never a silent truncation.
  template <class T = std::int64_t>
  T integer(const std::string& name) const {
    const std::int64_t v = at(name).as_int();
    if (!std::in_range<T>(v))
      throw std::out_of_range(
          "parameter '" + name + "' = " + std::to_string(v) +
          " does not fit the lesson's integer type (narrow the parameter's range)");
    return static_cast<T>(v);
  }
  double real(const std::string& name) const { return at(name).as_double(); }
  bool boolean(const std::string& name) const { return at(name).as_bool(); }
  const std::string& string(const std::string& name) const { return at(name).as_string(); }
  /// A duration parameter, in nanoseconds.
  Time duration(const std::string& name) const { return at(name).as_int(); }
  std::vector<double> numbers(const std::string& name) const {
    std::vector<double> out;
    for (const Value& v : at(name).as_list()) out.push_back(v.as_double());
    return out;
  }
  const Map& values() const { return values_; }

 private:
  const Value& at(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) throw std::invalid_argument("undeclared parameter '" + name + "'");
    return it->second;
  }
  Map values_;
};

/// The value paired with `variant` in `table`, e.g. a policy enum:
/// @code
///   static const std::pair<const char*, Policy> policies[] = {{"round_robin", Policy::rr}, ...};
///   return std::make_unique<Balancer>(variant_value(variant, policies), params, ctx);
/// @endcode
/// The runtime has already checked `variant` against LessonInfo::variants, so a miss means the
/// table is incomplete: it throws std::logic_error.
template <class T, std::size_t N>
const T& variant_value(const std::string& variant, const std::pair<const char*, T> (&table)[N]) {
  for (const auto& entry : table)
    if (variant == entry.first) return entry.second;
  throw std::logic_error("variant '" + variant + "' is declared but not built");
}

/// @brief A lesson: metadata and a factory of Systems, one per (variant, parameters).
class Lesson {
 public:
  virtual ~Lesson() = default;
  virtual const LessonInfo& info() const = 0;
  /// Build `variant` (one of info().variants) with validated `params`. `ctx` outlives the System.
  virtual std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                        Context& ctx) const = 0;
};

}  // namespace hldlab
