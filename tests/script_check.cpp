// End-to-end check of one experiment script (one CTest per scripts/*.lua):
//  1. it runs with its own seeds and every expectation passes (exit code 0);
//  2. a second run gives byte-identical JSON results;
//  3. another seed gives different measurements;
//  4. every claim holds on a sample of other seeds (10 fixed ones, or the list in the
//     environment variable HLDLAB_CHECK_SEEDS, e.g. "1-100" or "5,17,99");
//  5. every system measures the same when it runs alone (the others of its experiment built but
//     idle) as beside them (every system, or the first N of each experiment when the environment
//     variable HLDLAB_CHECK_ALONE is N: the sanitizer build checks fewer, it is 3-5x slower).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "hldlab/runtime/script.hpp"

using namespace hldlab;

namespace {

std::string measurements(const ScriptResult& r) {
  nlohmann::json systems = nlohmann::json::array();
  for (const auto& e : r.experiments) systems.push_back(to_json(e)["systems"]);
  return systems.dump();
}

std::vector<std::uint64_t> sample_seeds() {
  const char* env = std::getenv("HLDLAB_CHECK_SEEDS");
  if (env == nullptr || *env == '\0')
    return {11, 23, 101, 777, 2024, 31337, 65537, 99991, 123457, 4000000007};
  std::vector<std::uint64_t> seeds;
  std::stringstream list(env);
  std::string item;
  while (std::getline(list, item, ',')) {
    const auto dash = item.find('-');
    if (dash == std::string::npos) {
      seeds.push_back(std::stoull(item));
      continue;
    }
    for (auto s = std::stoull(item.substr(0, dash)); s <= std::stoull(item.substr(dash + 1)); ++s)
      seeds.push_back(s);
  }
  return seeds;
}

std::size_t alone_per_experiment() {
  const char* env = std::getenv("HLDLAB_CHECK_ALONE");
  if (env == nullptr || *env == '\0') return std::numeric_limits<std::size_t>::max();
  return std::stoull(env);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: script_check SCRIPT.lua\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  PluginRegistry registry;
  registry.load_directory(HLDLAB_TEST_PLUGIN_DIR);
  for (const auto& e : registry.errors()) std::fprintf(stderr, "plugin refused: %s\n", e.c_str());
  ScriptOptions options;
  // Traces the script replays are read from the data/ folder beside it (as --data would give).
  const std::filesystem::path data = std::filesystem::path(argv[1]).parent_path() / "data";
  if (std::filesystem::is_directory(data)) options.data_dirs = {data.string()};
  const ScriptResult first = run_script(argv[1], registry, options);
  std::fputs(first.output.c_str(), stdout);
  if (first.exit_code() != 0) {
    std::fprintf(stderr, "FAIL: exit code %d %s\n", first.exit_code(), first.error.c_str());
    return 1;
  }
  if (first.experiments.empty() && first.sweeps.empty()) {
    std::fprintf(stderr, "FAIL: the script ran no experiment\n");
    return 1;
  }
  options.print_reports = false;
  ScriptOptions two_threads = options;  // systems and sweep runs on two threads: the same JSON
  two_threads.jobs = 2;
  const ScriptResult again = run_script(argv[1], registry, two_threads);
  if (to_json(again).dump() != to_json(first).dump()) {
    std::fprintf(
        stderr,
        "FAIL: two runs with the same seed (on 1 and 2 threads) gave different JSON results\n");
    return 1;
  }
  int failures = 0;
  {
    ScriptOptions other_seed = options;
    other_seed.seed = 987654321;
    if (measurements(run_script(argv[1], registry, other_seed)) == measurements(first)) {
      std::fprintf(stderr, "FAIL: another seed gave identical measurements\n");
      ++failures;
    }
  }
  const auto seeds = sample_seeds();
  for (std::uint64_t seed : seeds) {
    ScriptOptions seeded = options;
    seeded.seed = seed;
    const ScriptResult r = run_script(argv[1], registry, seeded);
    if (!r.error.empty()) {
      std::fprintf(stderr, "FAIL: seed %llu: %s\n", static_cast<unsigned long long>(seed),
                   r.error.c_str());
      ++failures;
    }
    for (const auto& e : r.expectations)
      if (!e.passed) {
        std::fprintf(stderr, "FAIL: seed %llu: %s (%s)\n", static_cast<unsigned long long>(seed),
                     e.message.c_str(), e.where.c_str());
        ++failures;
      }
  }
  std::size_t alone_runs = 0;
  const std::size_t alone_max = alone_per_experiment();
  for (std::size_t i = 0; i < first.experiments.size(); ++i)
    for (std::size_t k = 0; k < std::min(alone_max, first.experiments[i].systems.size()); ++k) {
      const SystemResult& system = first.experiments[i].systems[k];
      ScriptOptions alone = options;
      alone.run_alone = std::make_pair(i, system.label);
      const ScriptResult r = run_script(argv[1], registry, alone);
      ++alone_runs;
      const bool ran = r.experiments.size() > i && r.experiments[i].systems.size() == 1;
      if (!ran || to_json(r.experiments[i].systems[0]).dump() != to_json(system).dump()) {
        std::fprintf(stderr, "FAIL: %s / %s measures differently alone%s\n",
                     first.experiments[i].name.c_str(), system.label.c_str(),
                     ran ? "" : (" (it did not run: " + r.error + ")").c_str());
        ++failures;
      }
    }
  if (failures > 0) return 1;
  std::printf(
      "script passes; same seed -> identical JSON; another seed -> different results; every "
      "claim holds on %zu other seeds; %zu systems measure the same alone\n",
      seeds.size(), alone_runs);
  return 0;
}
