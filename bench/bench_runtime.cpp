// Benchmarks (not tests): simulated requests per second through the runtime and lessons, and
// the cost of one Lua -> plugin call. Prints a table; never asserts on time.
#include <prometheus/text_serializer.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "hldlab/runtime/exporter.hpp"
#include "hldlab/runtime/kernel.hpp"
#include "hldlab/runtime/script.hpp"
#include "hldlab/runtime/workload.hpp"

using namespace hldlab;

using bench::now_seconds;
using bench::report;
using bench::run_lesson;

namespace {

/// Zipf by Walker/Vose alias table: O(n) memory and set-up, one uniform and one comparison per
/// draw. The alternative to the SDK's rejection-inversion (no table), measured below.
class ZipfAlias {
 public:
  ZipfAlias(std::uint64_t n, double s) : probability_(n), alias_(n) {
    std::vector<double> p(n);
    double sum = 0;
    for (std::uint64_t k = 0; k < n; ++k) sum += p[k] = std::pow(static_cast<double>(k + 1), -s);
    std::vector<std::uint32_t> small, large;
    for (std::uint64_t k = 0; k < n; ++k) {
      p[k] *= static_cast<double>(n) / sum;
      (p[k] < 1 ? small : large).push_back(static_cast<std::uint32_t>(k));
    }
    while (!small.empty() && !large.empty()) {
      const std::uint32_t a = small.back(), b = large.back();
      small.pop_back();
      probability_[a] = p[a];
      alias_[a] = b;
      p[b] -= 1 - p[a];
      if (p[b] < 1) {
        large.pop_back();
        small.push_back(b);
      }
    }
    for (auto k : large) probability_[k] = 1;
    for (auto k : small) probability_[k] = 1;
  }
  std::uint64_t sample(Rng& rng) const {
    const double u = rng.uniform() * static_cast<double>(probability_.size());
    const auto k = static_cast<std::uint64_t>(u);
    return u - static_cast<double>(k) < probability_[k] ? k : alias_[k];
  }

 private:
  std::vector<double> probability_;
  std::vector<std::uint32_t> alias_;
};

/// Draws per second of the two Zipf samplers at n keys.
void zipf_samplers(std::uint64_t n) {
  const int draws = 20'000'000;
  Rng rng(1);
  std::uint64_t sink = 0;
  const KeyDistribution inversion = KeyDistribution::zipf(n, 1.0);
  double start = now_seconds();
  for (int i = 0; i < draws; ++i) sink += inversion.sample(rng);
  report("zipf(s=1) rejection-inversion, n=" + std::to_string(n), draws, now_seconds() - start,
         "draws");
  start = now_seconds();
  const ZipfAlias alias(n, 1.0);
  const double setup = now_seconds() - start;
  start = now_seconds();
  for (int i = 0; i < draws; ++i) sink += alias.sample(rng);
  report("zipf(s=1) alias table, n=" + std::to_string(n) + " (set-up " +
             std::to_string(static_cast<int>(setup * 1000)) + " ms, " +
             std::to_string(n * 12 >> 20) + " MiB)",
         draws, now_seconds() - start, "draws");
  if (sink == 42) std::puts("");  // keeps the loops
}

}  // namespace

int main(int argc, char** argv) {
  // `bench_runtime [part]` runs only the parts whose name contains `part` (zipf, passthrough,
  // load_balancing, scrape, lua, sweep).
  const std::string only = argc > 1 ? argv[1] : "";
  const auto wanted = [&](const char* part) {
    return only.empty() || std::string(part).find(only) != std::string::npos;
  };
  if (wanted("zipf"))
    for (std::uint64_t n : {1'000'000ULL, 10'000'000ULL, 100'000'000ULL}) zipf_samplers(n);
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  const PluginRegistry test_lessons = bench::load_lessons(HLDLAB_BENCH_TEST_PLUGIN_DIR);

  if (wanted("passthrough")) {
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
    run_lesson(test_lessons, "passthrough", "instant", {}, realistic, seconds(5),
               "  the same, --jobs 2 (next requests drawn meanwhile)", 2);
    // The same requests drawn and nothing else: what the workload alone costs a request.
    RequestStream stream(realistic, seconds(5), 1);
    std::vector<Request> batch;
    batch.reserve(4200);
    double drawn = 0;
    const double start = now_seconds();
    while (stream.next_arrival() != Kernel::kNever) {
      batch.clear();
      drawn += static_cast<double>(stream.fill(batch, 4096));
    }
    report("  of which drawing the requests (poisson, zipf, lognormal)", drawn,
           now_seconds() - start, "requests");
  }

  if (wanted("load_balancing") && lessons.has("load_balancing")) {
    Workload lb;
    lb.arrivals.rps = 5000;
    lb.service = Distribution::exponential(static_cast<double>(milliseconds(1)));
    for (const char* v : {"round_robin", "least_connections", "p2c"}) {
      const std::string name = std::string("load_balancing/") + v + ", 10 backends, 50% load";
      run_lesson(lessons, "load_balancing", v, {{"backends", 10}}, lb, seconds(600), name);
    }
    run_lesson(lessons, "load_balancing", "round_robin", {{"backends", 10}}, lb, seconds(600),
               "  round_robin, --jobs 2 (next requests drawn meanwhile)", 2);
  }

  if (wanted("scrape") && lessons.has("load_balancing")) {
    // One Prometheus scrape (collect + text exposition) of an experiment of the five
    // load_balancing variants after a 60 s run: what each scrape costs the exporter's thread.
    auto e = std::make_shared<Experiment>(ExperimentConfig{.duration = seconds(60)});
    Workload w;
    w.arrivals.rps = 1000;
    w.service = Distribution::exponential(static_cast<double>(milliseconds(5)));
    e->set_workload(w);
    for (const char* v :
         {"round_robin", "least_connections", "p2c", "weighted_round_robin", "ip_hash"})
      e->add(lessons, "load_balancing", v, {{"backends", 10}});
    e->run();
    ExperimentCollector collector;
    collector.add(e);
    std::size_t series = 0, bytes = 0;
    for (const auto& family : collector.Collect()) series += family.metric.size();
    const int scrapes = 300;
    const double start = now_seconds();
    for (int i = 0; i < scrapes; ++i)
      bytes = prometheus::TextSerializer().Serialize(collector.Collect()).size();
    report("scrape of 5 load_balancing systems (" + std::to_string(series) + " metrics, " +
               std::to_string(bytes / 1024) + " KiB)",
           scrapes, now_seconds() - start, "scrapes");
  }
  ScriptOptions options;
  options.print_reports = false;
  options.instruction_budget = 1ULL << 40;
  if (wanted("lua")) {
    // Lua -> plugin: a loop of sys:call, minus the same loop without the call.
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
      report(std::string("Lua ") + call + " -> plugin and back", calls, t_with - t_without,
             "calls");
    }
  }
  if (wanted("sweep")) {
    // A 16-run sweep (4 points x 4 seeds, 400k requests each) on 1 and on 2 worker threads.
    const std::string sweep =
        "local lab = require 'hldlab'\n"
        "lab.sweep{ seeds = 4, params = { delay = { 1, 2, 3, 4 } }, run = function(p, seed)\n"
        "  local e = lab.experiment{ seed = seed, duration = '2s' }\n"
        "  e:workload{ arrivals = lab.poisson{ rps = 200000 },\n"
        "              keys = lab.zipf{ n = 100000, s = 1 } }\n"
        "  e:add{ lesson = 'passthrough', variant = 'delayed',\n"
        "         params = { delay = p.delay .. 'ms' } }\n"
        "  return { p99 = e:run().delayed.p99 } end }\n";
    for (unsigned jobs : {1u, 2u}) {
      ScriptOptions sweep_options = options;
      sweep_options.jobs = jobs;
      const double start = now_seconds();
      const auto r = run_script_text(sweep, "sweep.lua", test_lessons, sweep_options);
      if (!r.error.empty()) std::fprintf(stderr, "%s\n", r.error.c_str());
      report("lab.sweep of 16 runs, --jobs " + std::to_string(jobs), 16 * 400000.0,
             now_seconds() - start, "requests");
    }
  }
  return 0;
}
