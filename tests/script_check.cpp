// End-to-end check of one experiment script (one CTest per scripts/*.lua):
//  1. it runs with its own seeds and every expectation passes (exit code 0);
//  2. a second run gives byte-identical JSON results;
//  3. another seed gives different measurements.
#include <cstdio>
#include <string>

#include "hldlab/runtime/script.hpp"

using namespace hldlab;

namespace {
std::string measurements(const ScriptResult& r) {
  nlohmann::json systems = nlohmann::json::array();
  for (const auto& e : r.experiments) systems.push_back(to_json(e)["systems"]);
  return systems.dump();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: script_check SCRIPT.lua\n");
    return 2;
  }
  PluginRegistry registry;
  registry.load_directory(HLDLAB_TEST_PLUGIN_DIR);
  for (const auto& e : registry.errors()) std::fprintf(stderr, "plugin refused: %s\n", e.c_str());
  ScriptOptions options;
  const ScriptResult first = run_script(argv[1], registry, options);
  std::fputs(first.output.c_str(), stdout);
  if (first.exit_code() != 0) {
    std::fprintf(stderr, "FAIL: exit code %d %s\n", first.exit_code(), first.error.c_str());
    return 1;
  }
  if (first.experiments.empty()) {
    std::fprintf(stderr, "FAIL: the script ran no experiment\n");
    return 1;
  }
  options.print_reports = false;
  const ScriptResult again = run_script(argv[1], registry, options);
  if (to_json(again).dump() != to_json(first).dump()) {
    std::fprintf(stderr, "FAIL: two runs with the same seed gave different JSON results\n");
    return 1;
  }
  options.seed = 987654321;
  const ScriptResult other = run_script(argv[1], registry, options);
  if (measurements(other) == measurements(first)) {
    std::fprintf(stderr, "FAIL: another seed gave identical measurements\n");
    return 1;
  }
  std::printf("script passes; same seed -> identical JSON; another seed -> different results\n");
  return 0;
}
