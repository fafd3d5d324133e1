// Every ```lua example of README.md runs and passes: one CTest.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "hldlab/runtime/script.hpp"

using namespace hldlab;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: readme_examples README.md\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  PluginRegistry registry;
  registry.load_directory(HLDLAB_TEST_PLUGIN_DIR);
  std::ifstream in(argv[1]);
  std::string line, block;
  bool inside = false;
  int examples = 0, failures = 0, line_number = 0, first_line = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!inside && line.rfind("```lua", 0) == 0) {
      inside = true;
      block.clear();
      first_line = line_number + 1;
      continue;
    }
    if (inside && line.rfind("```", 0) == 0) {
      inside = false;
      ++examples;
      ScriptOptions options;
      options.print_reports = false;
      const std::string name = std::string(argv[1]) + ":" + std::to_string(first_line);
      const ScriptResult r = run_script_text(block, name, registry, options);
      if (r.exit_code() != 0) {
        ++failures;
        std::fprintf(stderr, "FAIL: the example at %s exits %d: %s\n%s", name.c_str(),
                     r.exit_code(), r.error.c_str(), r.output.c_str());
      }
      continue;
    }
    if (inside) block += line + "\n";
  }
  if (examples == 0) {
    std::fprintf(stderr, "FAIL: no ```lua example found in %s\n", argv[1]);
    return 1;
  }
  std::printf("%d README examples run, %d failed\n", examples, failures);
  return failures == 0 ? 0 : 1;
}
