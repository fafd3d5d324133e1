/// @file params.hpp
/// @brief Validation of user-given parameters against a lesson's typed schema.
#pragma once

#include <string>
#include <vector>

#include "hldlab/lesson.hpp"

namespace hldlab {

/// Parse "250ms", "1.5s", "2m", "100us", "10ns", "1h" (or a plain number of seconds) into ns.
/// Throws std::invalid_argument with a readable message on anything else. A leading minus
/// ("-10s", an offset behind) only when `signed_offset`.
Time parse_duration(const std::string& text, bool signed_offset = false);
/// A duration given as a string or a number of seconds (negative only when `signed_offset`).
Time duration_from(const Value& v, const std::string& what, bool signed_offset = false);

/// Check `given` against `specs`: unknown names (with a "did you mean"), wrong types, values out
/// of range or not among the choices are errors; absent parameters take their defaults.
/// `owner` names the thing in messages ("load_balancing", "fault kill_backend").
Params validate_params(const std::vector<ParamSpec>& specs, const Map& given,
                       const std::string& owner);

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
std::string closest_match(const std::string& name, const std::vector<std::string>& candidates);
/// " (did you mean 'x'?)" or "", for error messages.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

const char* param_type_name(ParamType type);
/// The value shown to users for a parameter value (durations as "20ms").
std::string format_param_value(const ParamSpec& spec, const Value& v);
/// A duration in the most readable unit ("1.5s", "20ms", "250us").
std::string format_duration(Time t);

}  // namespace hldlab
