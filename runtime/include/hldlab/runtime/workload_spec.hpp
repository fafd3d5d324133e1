/// @file workload_spec.hpp
/// @brief Reading a workload from its Lua description (as a Value map), with strict checks.
#pragma once

#include "hldlab/runtime/workload.hpp"
#include "hldlab/value.hpp"

namespace hldlab {

/// Build a Workload from `exp:workload{arrivals=, keys=, service=, clients=, writes=, sizes=}`.
/// Unknown fields, missing fields, wrong types and out-of-range numbers are errors that say
/// which field is wrong.
Workload parse_workload(const Value& spec);
/// A distribution of durations (ns): a duration ("20ms", seconds) or {kind=..., ...}.
Distribution parse_time_distribution(const Value& spec, const std::string& where);

}  // namespace hldlab
