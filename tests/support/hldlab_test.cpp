#include "hldlab_test.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace hldlab::testing {

const PluginRegistry& registry() {
  static const PluginRegistry loaded = [] {
    PluginRegistry r;
    r.load_directory(HLDLAB_TEST_PLUGIN_DIR);
    return r;
  }();
  INFO("plugin errors: " << loaded.errors().size());
  for (const auto& e : loaded.errors()) FAIL_CHECK("plugin refused: " << e);
  return loaded;
}

const PluginRegistry& test_plugins() {
  static const PluginRegistry loaded = [] {
    PluginRegistry r;
    r.load_directory(HLDLAB_TEST_BAD_PLUGIN_DIR "/good");
    return r;
  }();
  REQUIRE(loaded.errors().empty());
  return loaded;
}

const SystemResult& row(const ExperimentResult& r, const std::string& label) {
  for (const auto& s : r.systems)
    if (s.label == label) return s;
  FAIL("no system labelled " << label);
  throw std::logic_error("unreachable");
}

double figure(const SystemResult& s, const std::string& name) {
  const auto it = s.figures.find(name);
  if (it == s.figures.end()) FAIL(s.label << " has no figure " << name);
  return it->second.as_double();
}

double figure(const ExperimentResult& r, const std::string& label, const std::string& name) {
  return figure(row(r, label), name);
}

Workload constant_workload(double rps, Time service, std::uint64_t keys) {
  Workload w = poisson_workload(rps, service, keys);
  w.arrivals.kind = Arrivals::Kind::constant;
  return w;
}

Workload poisson_workload(double rps, Time service, std::uint64_t keys) {
  Workload w;
  w.arrivals.kind = Arrivals::Kind::poisson;
  w.arrivals.rps = rps;
  w.service = Distribution::constant(static_cast<double>(service));
  w.keys = KeyDistribution::uniform(keys);
  return w;
}

ExperimentResult run_experiment(const Workload& workload, Time duration,
                                const std::vector<SystemSpec>& systems, std::uint64_t seed,
                                const std::function<void(Experiment&)>& setup) {
  return run_experiment(workload, {.seed = seed, .duration = duration}, systems, setup);
}

ExperimentResult run_experiment(const Workload& workload, const ExperimentConfig& config,
                                const std::vector<SystemSpec>& systems,
                                const std::function<void(Experiment&)>& setup) {
  Experiment e(config);
  e.set_workload(workload);
  for (const auto& s : systems) e.add(registry(), s.lesson, s.variant, s.params, s.label);
  if (setup) setup(e);
  return e.run();
}

void inject_everywhere(Experiment& e, Time at, const std::string& fault, const Map& params) {
  e.at(at, [&e, fault, params] {
    for (const auto& s : e.systems()) {
      const auto& faults = s->info().faults;
      const auto spec = std::find_if(faults.begin(), faults.end(),
                                     [&](const FaultSpec& f) { return f.name == fault; });
      if (spec != faults.end() && !spec->variants.empty() &&
          std::find(spec->variants.begin(), spec->variants.end(), s->variant()) ==
              spec->variants.end())
        continue;
      s->inject(fault, params);
    }
  });
}

ScriptResult run_script_file(const std::string& path, std::uint64_t seed) {
  ScriptOptions options;
  options.seed = seed;
  options.print_reports = false;
  const std::string full = path.find('/') == std::string::npos
                               ? std::string(HLDLAB_SOURCE_DIR) + "/scripts/" + path
                               : path;
  return run_script(full, registry(), options);
}

int run_cli(const std::string& args, std::string& output) {
  const std::string command =
      std::string(HLDLAB_BINARY) + " --plugins " HLDLAB_TEST_PLUGIN_DIR " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buffer;
  output.clear();
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe))
    output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace hldlab::testing
