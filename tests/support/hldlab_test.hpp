// Helpers shared by the runtime tests and every lesson's tests.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "hldlab/runtime/experiment.hpp"
#include "hldlab/runtime/loader.hpp"
#include "hldlab/runtime/script.hpp"

namespace hldlab::testing {

/// The lessons built in this tree (loaded once; a refused plugin fails the test that asks).
const PluginRegistry& registry();

/// The runtime's own test lessons (passthrough: instant, delayed, faulty).
const PluginRegistry& test_plugins();

/// The row of `label` in `r`; fails the test if absent.
const SystemResult& row(const ExperimentResult& r, const std::string& label);

/// Run a script from the source tree's scripts/ (or a path) with the built lessons.
ScriptResult run_script_file(const std::string& path, std::uint64_t seed = 1);

/// Run the hldlab binary with `args` (a shell fragment); returns its exit code and fills
/// `output` with stdout+stderr.
int run_cli(const std::string& args, std::string& output);

}  // namespace hldlab::testing
