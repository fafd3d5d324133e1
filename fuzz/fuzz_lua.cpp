// libFuzzer target: arbitrary text as an experiment script, run in the sandbox with small
// instruction and memory budgets and no plugins. Must end in a result or an error, never a
// crash, a leak or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "hldlab/runtime/script.hpp"

using namespace hldlab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const PluginRegistry registry;  // no lessons: exercises the API and its errors
  ScriptOptions options;
  options.seed = 1;
  options.print_reports = false;
  options.instruction_budget = 200'000;
  options.memory_limit = 16 << 20;
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)run_script_text(text, "fuzz.lua", registry, options);
  return 0;
}
