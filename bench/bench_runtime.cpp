// Benchmarks (not tests): simulated requests per second through the runtime and lessons, and
// the cost of one Lua -> plugin call. Prints a table; never asserts on time.
#include <chrono>
#include <cstdio>
#include <string>

#include "hldlab/runtime/experiment.hpp"
#include "hldlab/runtime/script.hpp"

using namespace hldlab;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void report(const char* name, double count, double seconds, const char* unit) {
  std::printf("%-58s %12.0f %-10s %8.3f s  %10.2f M/s  %8.1f ns each\n", name, count, unit, seconds,
              count / seconds / 1e6, seconds / count * 1e9);
}

void bench_lesson(const char* name, const PluginRegistry& registry, const std::string& lesson,
                  const std::string& variant, const Map& params, Workload w, Time duration) {
  ExperimentConfig config;
  config.duration = duration;
  config.max_requests = 1e9;
  Experiment e(config);
  e.set_workload(w);
  e.add(registry, lesson, variant, params);
  const double start = now_seconds();
  const auto r = e.run();
  report(name, static_cast<double>(r.systems[0].completed), now_seconds() - start, "requests");
}

}  // namespace

int main() {
  PluginRegistry lessons, test_lessons;
  lessons.load_directory(HLDLAB_BENCH_PLUGIN_DIR);
  test_lessons.load_directory(HLDLAB_BENCH_TEST_PLUGIN_DIR);
  for (const auto& e : lessons.errors()) std::fprintf(stderr, "plugin refused: %s\n", e.c_str());
  for (const auto& e : test_lessons.errors()) std::fprintf(stderr, "plugin refused: %s\n", e.c_str());

  Workload simple;
  simple.arrivals.kind = Arrivals::Kind::constant;
  simple.arrivals.rps = 1e6;
  simple.keys = KeyDistribution::uniform(1000);
  simple.service = Distribution::constant(1000);
  bench_lesson("passthrough, constant arrivals, uniform keys", test_lessons, "passthrough", "instant",
               {}, simple, seconds(10));

  Workload realistic;
  realistic.arrivals.rps = 1e6;
  realistic.keys = KeyDistribution::zipf(100000, 1.0);
  realistic.service = Distribution::lognormal(static_cast<double>(milliseconds(20)),
                                              static_cast<double>(milliseconds(400)));
  bench_lesson("passthrough, poisson, zipf keys, lognormal service", test_lessons, "passthrough",
               "instant", {}, realistic, seconds(5));

  if (lessons.has("load_balancing")) {
    Workload lb;
    lb.arrivals.rps = 5000;
    lb.service = Distribution::exponential(static_cast<double>(milliseconds(1)));
    for (const char* v : {"round_robin", "least_connections", "p2c"}) {
      const std::string name = std::string("load_balancing/") + v + ", 10 backends, 50% load";
      bench_lesson(name.c_str(), lessons, "load_balancing", v, {{"backends", 10}}, lb, seconds(600));
    }
  }

  // Lua -> plugin: a loop of sys:call, minus the same loop without the call.
  ScriptOptions options;
  options.print_reports = false;
  options.instruction_budget = 1ULL << 40;
  const int calls = 1'000'000;
  const std::string setup =
      "local lab = require 'hldlab'\nlocal exp = lab.experiment{}\n"
      "local sys = exp:add{ lesson = 'passthrough', variant = 'instant' }\nlocal args = {}\n";
  const std::string with_call = setup + "for i = 1, " + std::to_string(calls) + " do sys:call('echo', args) end\n";
  const std::string without = setup + "for i = 1, " + std::to_string(calls) + " do local _ = args end\n";
  double start = now_seconds();
  auto r1 = run_script_text(with_call, "bench.lua", test_lessons, options);
  const double t_with = now_seconds() - start;
  start = now_seconds();
  auto r2 = run_script_text(without, "bench.lua", test_lessons, options);
  const double t_without = now_seconds() - start;
  if (!r1.error.empty() || !r2.error.empty()) std::fprintf(stderr, "%s%s\n", r1.error.c_str(), r2.error.c_str());
  report("Lua sys:call('echo', {}) -> plugin and back", calls, t_with - t_without, "calls");
  return 0;
}
