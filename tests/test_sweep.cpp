// Sweeps (lab.sweep, mean and Student-t interval, worker threads, shards and merge), tour
// --seeds, and hldlab diff.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hldlab/runtime/compare.hpp"
#include "hldlab/runtime/script.hpp"
#include "hldlab/runtime/sweep.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
namespace fs = std::filesystem;

namespace {

// Passthrough's delayed variant answers in `delay`; its figure `things` counts requests. The
// run returns the P50 (the delay, exactly), the request count (Poisson: varies by seed) and a
// boolean.
const char* kSweep = R"(
local lab = require "hldlab"
local s = lab.sweep{
  name = "delay sweep",
  seeds = 4,
  params = { delay_ms = { 1, 5, 20 }, rps = { 100, 200 } },
  run = function(point, seed)
    local exp = lab.experiment{ name = "point", seed = seed, duration = "2s" }
    exp:workload{ arrivals = lab.poisson{ rps = point.rps } }
    exp:add{ lesson = "passthrough", variant = "delayed", params = { delay = point.delay_ms .. "ms" } }
    local r = exp:run()
    return { p50 = r.delayed.p50, requests = r.delayed.requests, fast = r.delayed.p50 < 0.01 }
  end,
}
lab.report(s)
local p = s:at{ delay_ms = 5, rps = 200 }
lab.expect(math.abs(p.p50.mean - 0.005) < 1e-4 and p.p50.sd == 0, "the P50 is the delay on every seed")
lab.expect(p.requests.lo < 400 and 400 < p.requests.hi, "the interval holds the Poisson mean")
lab.expect(s:at{ delay_ms = 20, rps = 100 }.fast.mean == 0, "20 ms is not fast")
)";

ScriptResult run_text(const std::string& text, unsigned jobs,
                      std::pair<std::size_t, std::size_t> shard = {0, 1},
                      std::optional<std::uint64_t> seed = std::nullopt) {
  ScriptOptions options;
  options.print_reports = false;
  options.jobs = jobs;
  options.shard = shard;
  options.seed = seed;
  return run_script_text(text, "sweep.lua", hldlab::testing::test_plugins(), options);
}

/// Runs the hldlab binary with only the test plugin; returns the exit code.
int hldlab_cli(const std::string& args, std::string& output) {
  const std::string command = std::string(HLDLAB_BINARY) +
                              " --plugins " HLDLAB_TEST_BAD_PLUGIN_DIR "/good " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  output.clear();
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct TempDir {
  fs::path path;
  TempDir() {
    char templ[] = "/tmp/hldlab-sweep-XXXXXX";
    REQUIRE(mkdtemp(templ) != nullptr);
    path = templ;
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("the Student t quantile and the confidence interval agree with the textbook") {
  CHECK(student_t_975(1) == Approx(12.706));
  CHECK(student_t_975(9) == Approx(2.262));
  CHECK(student_t_975(30) == Approx(2.042));
  CHECK(student_t_975(40) == Approx(2.0211).margin(2e-4));   // tables: 2.021
  CHECK(student_t_975(120) == Approx(1.9799).margin(2e-4));  // tables: 1.980
  const Stats s = mean_ci({1, 2, 3, 4, 5});
  CHECK(s.n == 5);
  CHECK(s.mean == 3);
  CHECK(s.sd == Approx(std::sqrt(2.5)));
  CHECK(s.hi - s.mean == Approx(2.776 * std::sqrt(2.5) / std::sqrt(5.0)));
  CHECK(s.mean - s.lo == Approx(s.hi - s.mean));
  CHECK(mean_ci({7}).lo == 7);
  CHECK(std::isnan(mean_ci({}).mean));
}

TEST_CASE("a sweep runs every point on every seed and reports each figure's mean and interval") {
  const ScriptResult r = run_text(kSweep, 1);
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.exit_code() == 0);
  REQUIRE(r.sweeps.size() == 1);
  const SweepResult& s = r.sweeps[0];
  CHECK(s.points() == 6);
  CHECK(s.runs.size() == 24);
  CHECK(s.seeds == std::vector<std::uint64_t>{1, 2, 3, 4});
  CHECK(r.experiments.empty());  // a sweep's runs are not listed as experiments
  // Point 3 is delay 5 ms (the second value), rps 200 (the last parameter varies fastest).
  CHECK(s.point_params(3).at("delay_ms") == Value(std::int64_t{5}));
  CHECK(s.point_params(3).at("rps") == Value(std::int64_t{200}));
  CHECK(s.stats(3, "p50").mean == Approx(0.005).epsilon(0.01));  // the 0.8 % histogram
  CHECK(s.stats(3, "fast").mean == 1);
  CHECK(s.stats(4, "fast").mean == 0);
}

TEST_CASE("a sweep gives byte-identical results on any number of worker threads") {
  const std::string one = to_json(run_text(kSweep, 1)).dump();
  const std::string two = to_json(run_text(kSweep, 2)).dump();
  const std::string five = to_json(run_text(kSweep, 5)).dump();
  CHECK(one == two);
  CHECK(one == five);
  CHECK(one != to_json(run_text(kSweep, 2, {0, 1}, 100)).dump());  // --seed moves the seeds
}

TEST_CASE("the shards of a sweep merge into exactly the single-process result") {
  const ScriptResult whole = run_text(kSweep, 2);
  std::vector<std::vector<SweepResult>> parts;
  std::size_t runs = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const ScriptResult part = run_text(kSweep, 2, {i, 4});
    REQUIRE(part.error.empty());
    runs += part.sweeps[0].runs.size();
    parts.push_back({sweep_from_json(to_json(part.sweeps[0]))});
  }
  CHECK(runs == 24);
  CHECK(to_json(merge_sweeps(parts)[0]).dump() == to_json(whole.sweeps[0]).dump());
  parts.pop_back();
  CHECK_THROWS_WITH(merge_sweeps(parts), Catch::Contains("missing"));
  parts.push_back(parts[0]);
  CHECK_THROWS_WITH(merge_sweeps(parts), Catch::Contains("twice"));
}

TEST_CASE("four shard processes merged by hldlab merge equal one hldlab sweep, byte for byte") {
  TempDir tmp;
  std::ofstream(tmp.path / "s.lua") << kSweep;
  const std::string script = (tmp.path / "s.lua").string();
  std::string out;
  REQUIRE(hldlab_cli("sweep " + script + " --jobs 2 --json " + (tmp.path / "all.json").string(),
                     out) == 0);
  CHECK_THAT(out, Catch::Contains("== sweep delay sweep"));
  std::string parts;
  for (int i = 0; i < 4; ++i) {
    const std::string part = (tmp.path / ("part-" + std::to_string(i) + ".json")).string();
    INFO(out);
    REQUIRE(hldlab_cli("sweep " + script + " --shard " + std::to_string(i) + "/4 --json " + part,
                       out) == 0);
    parts += " " + part;
  }
  // The index may also come from a batch system.
  const std::string k8s = (tmp.path / "k8s-1.json").string();
  REQUIRE(hldlab_cli("sweep " + script + " --shards 4 --json " + k8s, out) == 2);
  CHECK_THAT(out, Catch::Contains("JOB_COMPLETION_INDEX"));
  REQUIRE(hldlab_cli("sweep " + script + " --shards 4 --json " + k8s, out) == 2);
  const std::string env = "JOB_COMPLETION_INDEX=1 ";
  REQUIRE(
      std::system((env + HLDLAB_BINARY + " --plugins " HLDLAB_TEST_BAD_PLUGIN_DIR "/good sweep " +
                   script + " --shards 4 --json " + k8s + " 2>/dev/null")
                      .c_str()) == 0);
  CHECK(read_text(k8s) == read_text(tmp.path / "part-1.json"));
  const std::string slurm = (tmp.path / "slurm-1.json").string();
  REQUIRE(
      std::system(("SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=1 " + std::string(HLDLAB_BINARY) +
                   " --plugins " HLDLAB_TEST_BAD_PLUGIN_DIR "/good sweep " + script +
                   " --shards 4 --json " + slurm + " 2>/dev/null")
                      .c_str()) == 0);
  CHECK(read_text(slurm) == read_text(tmp.path / "part-1.json"));

  REQUIRE(hldlab_cli("merge" + parts + " --json " + (tmp.path / "merged.json").string(), out) == 0);
  CHECK(read_text(tmp.path / "merged.json") == read_text(tmp.path / "all.json"));
  CHECK(hldlab_cli("merge " + (tmp.path / "part-0.json").string(), out) == 2);
  CHECK_THAT(out, Catch::Contains("a shard not merged?"));
  CHECK(hldlab_cli("sweep " + script + " --shard 4/4", out) == 2);
  CHECK_THAT(out, Catch::Contains("below the count"));
}

TEST_CASE("lab.sweep refuses bad input with a message naming it") {
  auto error_of = [](const std::string& body) {
    return run_text("local lab = require 'hldlab'\n" + body, 1).error;
  };
  const std::string run = "run = function(p, s) return { x = 1 } end";
  CHECK_THAT(error_of("lab.sweep{ seeds = 2, " + run + ", colour = 1 }"),
             Catch::Contains("unknown field 'colour'"));
  CHECK_THAT(error_of("lab.sweep{ seeds = 0, " + run + " }"),
             Catch::Contains("seeds must be a count"));
  CHECK_THAT(error_of("lab.sweep{ seeds = 2, params = { n = 3 }, " + run + " }"),
             Catch::Contains("params.n must be a list of values"));
  CHECK_THAT(error_of("lab.sweep{ seeds = 2, run = 3 }"),
             Catch::Contains("run must be a function"));
  CHECK_THAT(error_of("lab.sweep{ seeds = 2, run = function() return { x = 'high' } end }"),
             Catch::Contains("'x' = a string") && Catch::Contains("seed 1"));
  CHECK_THAT(
      error_of("lab.sweep{ seeds = 2, run = function() lab.expect(true, 'x') return {} end }"),
      Catch::Contains("lab.expect inside a sweep's run function"));
  CHECK_THAT(error_of("lab.sweep{ seeds = 1, params = { n = { 1, 2 } }, run = function(p) if p.n "
                      "== 2 then error('boom') end return {} end }"),
             Catch::Contains("n=2 seed 1") && Catch::Contains("boom"));
  CHECK_THAT(error_of("local s = lab.sweep{ seeds = 1, " + run + " } s:at{ colour = 1 }"),
             Catch::Contains("no parameter 'colour'"));
}

TEST_CASE("hldlab diff marks changes beyond the threshold and exits 1 on a regression") {
  auto results = [](double p99, double throughput, double lost, bool second_system) {
    nlohmann::json system = {{"label", "lru"},
                             {"latency_seconds", {{"p50", 0.001}, {"p99", p99}}},
                             {"throughput_rps", throughput},
                             {"hit_ratio", 0.5},
                             {"completed", 1000},
                             {"unfinished", 0},
                             {"outcomes", {{"error", 0}, {"timeout", 0}, {"rejected", 0}}},
                             {"figures", {{"lost", lost}}}};
    nlohmann::json r = {{"experiments", {{{"experiment", "e"}, {"systems", {system}}}}}};
    if (second_system) {
      system["label"] = "fifo";
      r["experiments"][0]["systems"].push_back(system);
    }
    return r;
  };
  const auto base = results(0.100, 1000, 10, true);
  Comparison same = compare_results(base, base, 0.05);
  CHECK(same.regressions == 0);
  CHECK(same.beyond == 0);
  CHECK(same.compared ==
        2 * 10);  // p50 p99 throughput hit_ratio completed unfinished error timeout rejected lost
  // P99 up 4 %: within 5 %. Throughput down 10 %: a regression. Up 10 %: better.
  CHECK(compare_results(base, results(0.104, 1000, 10, true), 0.05).regressions == 0);
  const Comparison slower = compare_results(base, results(0.100, 900, 10, true), 0.05);
  CHECK(slower.regressions == 2);  // both systems
  CHECK_THAT(slower.table, Catch::Contains("throughput_rps") && Catch::Contains("-10.0%") &&
                               Catch::Contains("REGRESSION"));
  const Comparison faster = compare_results(base, results(0.100, 1100, 10, true), 0.05);
  CHECK(faster.regressions == 0);
  CHECK(faster.beyond == 2);
  // A lesson figure that drifts either way, and a system that disappears.
  CHECK(compare_results(base, results(0.100, 1000, 8, true), 0.05).regressions == 2);
  CHECK(compare_results(base, results(0.100, 1000, 10, false), 0.05).regressions == 1);
  CHECK_THROWS_WITH(compare_results(nlohmann::json::object(), base, 0.05),
                    Catch::Contains("not hldlab results"));

  TempDir tmp;
  std::ofstream(tmp.path / "base.json") << base.dump();
  std::ofstream(tmp.path / "new.json") << results(0.100, 900, 10, true).dump();
  std::string out;
  CHECK(hldlab_cli(
            "diff " + (tmp.path / "base.json").string() + " " + (tmp.path / "base.json").string(),
            out) == 0);
  CHECK(hldlab_cli(
            "diff " + (tmp.path / "base.json").string() + " " + (tmp.path / "new.json").string(),
            out) == 1);
  CHECK_THAT(out, Catch::Contains("2 regressions"));
  CHECK(hldlab_cli("diff " + (tmp.path / "base.json").string() + " " +
                       (tmp.path / "new.json").string() + " --threshold 15%",
                   out) == 0);
  CHECK(hldlab_cli("diff " + (tmp.path / "base.json").string() + " /nonexistent.json", out) == 2);
  CHECK(hldlab_cli("diff " + (tmp.path / "base.json").string() + " " +
                       (tmp.path / "new.json").string() + " --threshold lots",
                   out) == 2);
}

TEST_CASE("run --baseline compares a run with an earlier one") {
  TempDir tmp;
  const std::string script = (tmp.path / "one.lua").string();
  std::ofstream(script) << R"(local lab = require "hldlab"
local exp = lab.experiment{ name = "one", duration = "2s" }
exp:workload{ arrivals = lab.poisson{ rps = 200 } }
exp:add{ lesson = "passthrough", variant = "delayed", params = { delay = "5ms" } }
exp:run())";
  std::string out;
  const std::string base = (tmp.path / "base.json").string();
  REQUIRE(hldlab_cli("run " + script + " --seed 1 --json " + base, out) == 0);
  CHECK(hldlab_cli("run " + script + " --seed 1 --baseline " + base, out) == 0);
  CHECK_THAT(out, Catch::Contains("0 regressions"));
  // Another seed: a Poisson count moves by ~1/sqrt(400) = 5 %; 0.1 % catches it.
  CHECK(hldlab_cli("run " + script + " --seed 2 --baseline " + base + " --threshold 0.1%", out) ==
        1);
  CHECK_THAT(out, Catch::Contains("completed"));
}

TEST_CASE("tour --seeds counts on how many seeds each claim held, and fails if one did not") {
  TempDir tmp;
  std::ofstream(tmp.path / "passthrough.lua") << R"(local lab = require "hldlab"
local exp = lab.experiment{ name = "t", duration = "1s" }
exp:workload{ arrivals = lab.poisson{ rps = 100 } }
exp:add{ lesson = "passthrough", variant = "instant" }
local r = exp:run()
lab.expect(r.instant.requests > 0, "requests arrive")
lab.expect(r.instant.requests % 2 == 0, "an even number of requests"))";
  std::string out;
  const int code = hldlab_cli("tour --seeds 6 --jobs 2 --scripts " + tmp.path.string(), out);
  INFO(out);
  CHECK(code == 1);
  CHECK_THAT(out, Catch::Contains("   6/6  requests arrive"));
  // How many of seeds 1..6 gave an even count: the same as six single runs say.
  int even = 0;
  for (int seed = 1; seed <= 6; ++seed) {
    std::string one;
    even += hldlab_cli("run " + (tmp.path / "passthrough.lua").string() + " --seed " +
                           std::to_string(seed),
                       one) == 0;
  }
  CHECK(even > 0);
  CHECK(even < 6);
  CHECK_THAT(
      out, Catch::Contains("FAIL     " + std::to_string(even) + "/6  an even number of requests"));
}
