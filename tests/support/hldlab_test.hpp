// Helpers shared by the runtime tests and every lesson's tests.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

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

/// A lesson figure of system `label` as a number; fails the test if either is absent.
double figure(const ExperimentResult& r, const std::string& label, const std::string& name);
double figure(const SystemResult& s, const std::string& name);

/// Open-loop workloads in one line: `rps` requests per second, each needing `service`, keys
/// uniform over `keys`.
Workload constant_workload(double rps, Time service = milliseconds(1), std::uint64_t keys = 1000);
Workload poisson_workload(double rps, Time service = milliseconds(1), std::uint64_t keys = 1000);

/// One system of run_experiment: lesson, variant, parameters and label (default: the variant).
struct SystemSpec {
  std::string lesson, variant;
  Map params = {};
  std::string label = "";
};

/// Run one experiment of `duration` on `workload` with `systems` (from the built lessons).
/// `setup`, if given, runs before the run (to schedule actions with e.at).
ExperimentResult run_experiment(const Workload& workload, Time duration,
                                const std::vector<SystemSpec>& systems, std::uint64_t seed = 1,
                                const std::function<void(Experiment&)>& setup = {});
/// The same with a whole configuration (seed, duration, drain, warm-up, ...).
ExperimentResult run_experiment(const Workload& workload, const ExperimentConfig& config,
                                const std::vector<SystemSpec>& systems,
                                const std::function<void(Experiment&)>& setup = {});

/// Inject `fault` with `params` at virtual time `at` into every system of `e` it applies to (a
/// lesson fault declared for some variants only skips the others).
void inject_everywhere(Experiment& e, Time at, const std::string& fault, const Map& params = {});

/// Run a script from the source tree's scripts/ (or a path) with the built lessons.
ScriptResult run_script_file(const std::string& path, std::uint64_t seed = 1);

/// Run the hldlab binary with `args` (a shell fragment); returns its exit code and fills
/// `output` with stdout+stderr.
int run_cli(const std::string& args, std::string& output);

}  // namespace hldlab::testing
