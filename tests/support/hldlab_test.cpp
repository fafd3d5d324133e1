#include "hldlab_test.hpp"

#include <sys/wait.h>

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
