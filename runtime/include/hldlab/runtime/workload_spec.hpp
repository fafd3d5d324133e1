/// @file workload_spec.hpp
/// @brief Reading a workload from its Lua description (as a Value map), with strict checks.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "hldlab/runtime/workload.hpp"
#include "hldlab/value.hpp"

namespace hldlab {

/// Build a Workload from `exp:workload{arrivals=, keys=, service=, clients=, writes=, sizes=}`.
/// Unknown fields, missing fields, wrong types and out-of-range numbers are errors that say
/// which field is wrong.
/// Resolves a data file named by a script (a trace) to a path it may open, or throws.
using DataFiles = std::function<std::string(const std::string& name)>;

Workload parse_workload(const Value& spec, const DataFiles& data_files = {});

/// Data files resolve under one of `dirs` (the --data flags) only: the path, symbolic links
/// resolved, must lie inside a directory given; anything else is an error naming the flag.
std::string resolve_data_file(const std::string& name, const std::vector<std::string>& dirs);
/// A distribution of durations (ns): a duration ("20ms", seconds) or {kind=..., ...}.
Distribution parse_time_distribution(const Value& spec, const std::string& where);

}  // namespace hldlab
