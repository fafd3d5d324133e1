// Benchmarks (not tests): simulated requests per second through the runtime and lessons, and
// the cost of one Lua -> plugin call. Prints a table; never asserts on time.
#include <cstdio>
#include <string>

#include "bench_support.hpp"
#include "hldlab/runtime/script.hpp"

using namespace hldlab;

using bench::now_seconds;
using bench::report;
using bench::run_lesson;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  const PluginRegistry test_lessons = bench::load_lessons(HLDLAB_BENCH_TEST_PLUGIN_DIR);

  Workload simple;
  simple.arrivals.kind = Arrivals::Kind::constant;
  simple.arrivals.rps = 1e6;
  simple.keys = KeyDistribution::uniform(1000);
  simple.service = Distribution::constant(1000);
  run_lesson(test_lessons, "passthrough", "instant", {}, simple, seconds(10),
             "passthrough, constant arrivals, uniform keys");

  Workload realistic;
  realistic.arrivals.rps = 1e6;
  realistic.keys = KeyDistribution::zipf(100000, 1.0);
  realistic.service = Distribution::lognormal(static_cast<double>(milliseconds(20)),
                                              static_cast<double>(milliseconds(400)));
  run_lesson(test_lessons, "passthrough", "instant", {}, realistic, seconds(5),
             "passthrough, poisson, zipf keys, lognormal service");

  if (lessons.has("load_balancing")) {
    Workload lb;
    lb.arrivals.rps = 5000;
    lb.service = Distribution::exponential(static_cast<double>(milliseconds(1)));
    for (const char* v : {"round_robin", "least_connections", "p2c"}) {
      const std::string name = std::string("load_balancing/") + v + ", 10 backends, 50% load";
      run_lesson(lessons, "load_balancing", v, {{"backends", 10}}, lb, seconds(600), name);
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
  const std::string without =
      setup + "for i = 1, " + std::to_string(calls) + " do local _ = args end\n";
  double start = now_seconds();
  auto empty = run_script_text(without, "bench.lua", test_lessons, options);
  const double t_without = now_seconds() - start;
  for (const char* call : {"sys:call('ping')", "sys:call('echo', args)"}) {
    const std::string with_call =
        setup + "for i = 1, " + std::to_string(calls) + " do " + call + " end\n";
    start = now_seconds();
    auto r = run_script_text(with_call, "bench.lua", test_lessons, options);
    const double t_with = now_seconds() - start;
    if (!r.error.empty() || !empty.error.empty())
      std::fprintf(stderr, "%s%s\n", r.error.c_str(), empty.error.c_str());
    report(std::string("Lua ") + call + " -> plugin and back", calls, t_with - t_without, "calls");
  }
  return 0;
}
