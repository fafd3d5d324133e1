#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hldlab/runtime/params.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;

namespace {
ScriptResult run_lua(const std::string& text, std::uint64_t seed = 1,
                     std::uint64_t budget = 50'000'000, std::size_t memory = 64 << 20) {
  ScriptOptions options;
  options.seed = seed;
  options.print_reports = false;
  options.instruction_budget = budget;
  options.memory_limit = memory;
  return run_script_text(text, "test.lua", hldlab::testing::test_plugins(), options);
}

const char* kSmallExperiment = R"(
local lab = require "hldlab"
local exp = lab.experiment{ name = "small", duration = "2s" }
exp:workload{ arrivals = lab.poisson{ rps = 500 }, keys = lab.zipf{ n = 1000, s = 1.0 },
              service = lab.lognormal{ median = "1ms", p99 = "10ms" } }
local a = exp:add{ lesson = "passthrough", variant = "instant" }
exp:add{ lesson = "passthrough", variant = "delayed", params = { delay = "5ms" } }
exp:at("1s", function(sys) if sys.variant == "delayed" then sys:inject("latency", { delay = "10ms" }) end end)
local r = exp:run()
lab.report(r)
lab.expect(r.delayed.p99 > r.instant.p99, "delayed is slower")
lab.expect(r.instant.requests == r.delayed.requests, "same stream")
print("random", math.random(1, 1000000))
)";
}  // namespace

TEST_CASE("a script runs experiments, reports a table and records expectations") {
  const ScriptResult r = run_lua(kSmallExperiment);
  INFO(r.error);
  REQUIRE(r.error.empty());
  REQUIRE(r.exit_code() == 0);
  REQUIRE(r.expectations.size() == 2);
  REQUIRE(r.experiments.size() == 1);
  REQUIRE_THAT(r.output, Catch::Contains("== small") && Catch::Contains("delayed") &&
                             Catch::Contains("ok    delayed is slower"));
  REQUIRE(r.experiments[0].systems[1].faults.at("latency") == 1);
}

TEST_CASE("the same seed gives byte-identical JSON results, another seed different ones") {
  const std::string a = to_json(run_lua(kSmallExperiment, 7)).dump();
  const std::string b = to_json(run_lua(kSmallExperiment, 7)).dump();
  const std::string c = to_json(run_lua(kSmallExperiment, 8)).dump();
  REQUIRE(a == b);
  REQUIRE(a != c);
}

TEST_CASE("math.random is the seeded generator") {
  const auto first = run_lua("print(math.random(1, 1000000), math.random())", 5).output;
  REQUIRE(first == run_lua("print(math.random(1, 1000000), math.random())", 5).output);
  REQUIRE(first != run_lua("print(math.random(1, 1000000), math.random())", 6).output);
}

TEST_CASE("a syntax error is reported with file and line, exit code 2") {
  const ScriptResult r = run_lua("local x = 1\nlocal y = = 2\n");
  REQUIRE_THAT(r.error, Catch::StartsWith("test.lua:2:"));
  REQUIRE(r.exit_code() == 2);
}

TEST_CASE("a runtime error inside an at() callback names the callback's line") {
  const ScriptResult r = run_lua(R"(local lab = require "hldlab"
local exp = lab.experiment{ duration = "1s" }
exp:workload{ arrivals = lab.poisson{ rps = 10 } }
exp:add{ lesson = "passthrough", variant = "instant" }
exp:at("0.5s", function(sys)
  local x = nil
  return x.field
end)
exp:run()
)");
  REQUIRE_THAT(r.error, Catch::StartsWith("test.lua:7:") && Catch::Contains("nil value"));
  REQUIRE(r.exit_code() == 2);
}

TEST_CASE("reading an undefined global is an error") {
  REQUIRE_THAT(
      run_lua("print(undefined_thing)").error,
      Catch::Contains("test.lua:1:") && Catch::Contains("undefined global 'undefined_thing'"));
}

TEST_CASE("the sandbox has no os, io, debug, package, load or dofile") {
  for (const char* code :
       {"os.execute('true')", "io.popen('ls')", "debug.getinfo(1)", "package.loadlib('x', 'y')",
        "load('return 1')", "dofile('x')", "string.dump(print)", "require('socket')"}) {
    const ScriptResult r = run_lua(code);
    INFO(code << " -> " << r.error);
    REQUIRE(r.exit_code() == 2);
    REQUIRE_THAT(r.error, Catch::Contains("not available") || Catch::Contains("nil value"));
  }
}

TEST_CASE("an endless loop is stopped by the instruction budget") {
  const ScriptResult r = run_lua("while true do end", 1, 1'000'000);
  REQUIRE_THAT(r.error, Catch::Contains("instruction budget"));
  REQUIRE(r.exit_code() == 2);
}

TEST_CASE("an endless loop inside an at() callback is stopped too") {
  const ScriptResult r = run_lua(R"(local lab = require "hldlab"
local exp = lab.experiment{ duration = "1s" }
exp:workload{ arrivals = lab.poisson{ rps = 10 } }
exp:add{ lesson = "passthrough", variant = "instant" }
exp:at("0.5s", function(sys) while true do end end)
exp:run()
)",
                                 1, 1'000'000);
  REQUIRE_THAT(r.error, Catch::Contains("instruction budget"));
}

TEST_CASE("a script that allocates without bound hits the memory limit") {
  const ScriptResult r = run_lua(
      "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end", 1, 10'000'000'000ULL);
  REQUIRE_THAT(r.error, Catch::Contains("not enough memory"));
}

TEST_CASE("unknown lesson, variant and parameter are errors with a did-you-mean") {
  auto add = [](const std::string& spec) {
    return run_lua("local lab = require 'hldlab'\nlocal exp = lab.experiment{}\nexp:add" + spec)
        .error;
  };
  REQUIRE_THAT(add("{ lesson = 'passthru', variant = 'instant' }"),
               Catch::Contains("test.lua:3:") && Catch::Contains("did you mean 'passthrough'"));
  REQUIRE_THAT(add("{ lesson = 'passthrough', variant = 'instnat' }"),
               Catch::Contains("did you mean 'instant'"));
  REQUIRE_THAT(add("{ lesson = 'passthrough', variant = 'instant', params = { dealy = 1 } }"),
               Catch::Contains("unknown parameter 'dealy' (did you mean 'delay'?)"));
  REQUIRE_THAT(add("{ lesson = 'passthrough', variant = 'instant', params = { delay = true } }"),
               Catch::Contains("must be a duration"));
  REQUIRE_THAT(add("{ lesson = 'passthrough', varaint = 'instant' }"),
               Catch::Contains("unknown field 'varaint'"));
  REQUIRE_THAT(
      add("{ lesson = 'passthrough', variant = 'throws_in_build' }"),
      Catch::Contains("test.lua:3: passthrough/throws_in_build: build failed: factory exploded"));
}

TEST_CASE("bad workloads, faults and operations are errors naming what is wrong") {
  auto run_with = [](const std::string& line) {
    return run_lua(
               "local lab = require 'hldlab'\nlocal exp = lab.experiment{ duration = '1s' }\n"
               "local sys = exp:add{ lesson = 'passthrough', variant = 'instant' }\n" +
               line)
        .error;
  };
  REQUIRE_THAT(run_with("exp:workload{ arrivals = lab.poisson{ rps = -1 } }"),
               Catch::Contains("out of range"));
  REQUIRE_THAT(run_with("exp:workload{ arrivals = lab.poisson{ rps = 1e12 } }"),
               Catch::Contains("out of range"));
  REQUIRE_THAT(run_with("sys:inject('latncy', {})"), Catch::Contains("did you mean 'latency'"));
  REQUIRE_THAT(run_with("sys:inject('latency', { delay = 'soon' })"),
               Catch::Contains("not a duration"));
  REQUIRE_THAT(run_with("sys:call('ech', {})"), Catch::Contains("did you mean 'echo'"));
  REQUIRE_THAT(run_with("exp:at('5s', function() end)"), Catch::Contains("not before the end"));
  REQUIRE_THAT(run_with("exp:run() exp:run()"), Catch::Contains("runs only once"));
  REQUIRE_THAT(run_with("local r = exp:run() print(r.instant.p99x)"),
               Catch::Contains("results have no field 'p99x'"));
  REQUIRE_THAT(run_with("sys.inject('latency')"), Catch::Contains("instead of ':'"));
  REQUIRE_THAT(run_with("exp:add{ lesson = 'passthrough', variant = 'instant', label = 'seed' }"),
               Catch::Contains("is a field of the results"));
  REQUIRE_THAT(run_with("lab.experiment{ duration = -3 }"), Catch::Contains("duration must be a duration between 0"));
}

TEST_CASE("operations return values to Lua") {
  const ScriptResult r = run_lua(R"(local lab = require "hldlab"
local exp = lab.experiment{}
local sys = exp:add{ lesson = "passthrough", variant = "instant" }
print(sys:call("echo", { text = "hello" }).text)
)");
  REQUIRE(r.error.empty());
  REQUIRE(r.output == "hello\n");
}

TEST_CASE("a failed expectation gives exit code 1 and says where") {
  const ScriptResult r =
      run_lua("local lab = require 'hldlab'\nlab.expect(1 > 2, 'one beats two')");
  REQUIRE(r.exit_code() == 1);
  REQUIRE_THAT(r.output, Catch::Contains("FAIL  one beats two  (test.lua:2)"));
}

TEST_CASE("a failed system gives exit code 1 while the others still report") {
  const ScriptResult r = run_lua(R"(local lab = require "hldlab"
local exp = lab.experiment{ duration = "1s" }
exp:workload{ arrivals = lab.poisson{ rps = 1000 } }
exp:add{ lesson = "passthrough", variant = "faulty" }
exp:add{ lesson = "passthrough", variant = "instant" }
local r = exp:run()
lab.report(r)
)");
  REQUIRE(r.error.empty());
  REQUIRE(r.exit_code() == 1);
  REQUIRE_THAT(r.output, Catch::Contains("FAILED: passthrough/faulty: deliberate failure"));
  REQUIRE(r.experiments[0].systems[1].completed > 500);
}

TEST_CASE("lab.expect can mark the headline claim and refuses unknown options") {
  const ScriptResult r = run_lua(
      "local lab = require 'hldlab'\nlab.expect(true, 'setup')\n"
      "lab.expect(true, 'the claim', { headline = true })");
  REQUIRE(r.expectations.size() == 2);
  REQUIRE_FALSE(r.expectations[0].headline);
  REQUIRE(r.expectations[1].headline);
  REQUIRE_THAT(
      run_lua("local lab = require 'hldlab'\nlab.expect(true, 'x', { headlne = true })").error,
      Catch::Contains("unknown field 'headlne' (did you mean 'headline'?)"));
}

TEST_CASE("the latency of answered requests is reported apart from instant failures") {
  const ScriptResult r = run_lua(R"(local lab = require "hldlab"
local exp = lab.experiment{ duration = "2s" }
exp:workload{ arrivals = lab.constant{ rps = 1000 } }
local sys = exp:add{ lesson = "passthrough", variant = "delayed", params = { delay = "10ms" } }
sys:inject("errors", { rate = 0.8 })
local r = exp:run()
lab.expect(r.delayed.p50_ok > 0.0099 and r.delayed.p50 < 0.001, "answers take 10 ms, failures 0")
lab.report(r)
)");
  REQUIRE(r.exit_code() == 0);
  REQUIRE_THAT(r.output, Catch::Contains("p99 ok"));
}

TEST_CASE("error() with a table or with nothing still says where it was raised") {
  CHECK_THAT(run_lua("local x = 1\nerror({})").error,
             Catch::Contains("test.lua:2:") && Catch::Contains("error raised with a table"));
  CHECK_THAT(run_lua("error()").error,
             Catch::Contains("test.lua:1:") && Catch::Contains("error raised with a nil"));
}

TEST_CASE("the hldlab module cannot be changed, nor the sandbox switched off") {
  CHECK_THAT(run_lua("local lab = require 'hldlab'\nlab.expect = function() return true end").error,
             Catch::Contains("the hldlab module is read-only"));
  CHECK_THAT(run_lua("setmetatable(_G, nil)").error,
             Catch::Contains("cannot change a protected metatable"));
  CHECK_THAT(run_lua("rawset(_G, 'x', 1)").error, Catch::Contains("not available"));
  CHECK_THAT(run_lua("local lab = require 'hldlab'\nsetmetatable(lab, nil)").error,
             Catch::Contains("protected metatable"));
}

TEST_CASE("a yield inside a callback is explained, not a riddle") {
  const ScriptResult r = run_lua(R"(
local lab = require "hldlab"
local exp = lab.experiment{ duration = "2s" }
exp:workload{ arrivals = lab.constant{ rps = 10 } }
exp:add{ lesson = "passthrough", variant = "instant" }
exp:at("1s", function(sys) coroutine.yield() end)
exp:run()
)");
  CHECK_THAT(r.error, Catch::Contains("test.lua:6:") && Catch::Contains("cannot yield"));
}

TEST_CASE("faults after the run and actions in the past are errors") {
  const char* setup = R"(
local lab = require "hldlab"
local exp = lab.experiment{ duration = "2s" }
exp:workload{ arrivals = lab.constant{ rps = 10 } }
local sys = exp:add{ lesson = "passthrough", variant = "instant" }
)";
  CHECK_THAT(run_lua(std::string(setup) + "exp:run()\nsys:inject('errors', {})").error,
             Catch::Contains("test.lua:7:") && Catch::Contains("after the run"));
  CHECK_THAT(run_lua(std::string(setup) +
                     "exp:at('1s', function(s) s:at('0.5s', function() end) end)\nexp:run()")
                 .error,
             Catch::Contains("in the past"));
}

TEST_CASE("an integer parameter beyond 64 bits says so") {
  const ScriptResult r = run_lua(R"(
local lab = require "hldlab"
local exp = lab.experiment{}
exp:add{ lesson = "passthrough", variant = "instant", params = { delay = 2^63 } }
)");
  CHECK_THAT(r.error, Catch::Contains("between 0 and 31 years"));
  CHECK_THAT(run_lua(R"(
local lab = require "hldlab"
local exp = lab.experiment{}
exp:add{ lesson = "passthrough", variant = "instant", params = { count = 2^63 } }
)").error, Catch::Contains("count") && Catch::Contains("does not fit a 64-bit integer"));
}

TEST_CASE("lab.check is a sanity check: silent when it holds, a failure when not, never a claim") {
  const ScriptResult r = run_lua(R"(
local lab = require "hldlab"
lab.check(true, "fine")
lab.expect(true, "a claim")
)");
  CHECK(r.exit_code() == 0);
  CHECK(r.output.find("fine") == std::string::npos);
  REQUIRE(r.expectations.size() == 2);
  CHECK_FALSE(r.expectations[0].claim);
  CHECK(r.expectations[1].claim);
  const ScriptResult bad = run_lua("local lab = require 'hldlab'\nlab.check(false, 'broken')");
  CHECK(bad.exit_code() == 1);
  CHECK_THAT(bad.output, Catch::Contains("FAIL  check: broken"));
}

TEST_CASE("compound durations read as the sum of their parts") {
  CHECK(parse_duration("1h30m") == seconds(5400));
  CHECK(parse_duration("2m30s") == seconds(150));
  CHECK(parse_duration("1.5s") == milliseconds(1500));
  CHECK(parse_duration("1d") == seconds(86400));
  CHECK_THROWS_WITH(parse_duration("1h30"), Catch::Contains("without a unit"));
  CHECK_THROWS_WITH(parse_duration("5parsecs"), Catch::Contains("unknown unit"));
  CHECK(seconds(1.001) == parse_duration("1.001s"));  // one rounding rule
}

TEST_CASE("lab.steady_state judges every window: errors and a slow spell each break it where they act") {
  // 100 requests a second for 10 s. Every request fails in [3 s, 5 s); in [6 s, 7 s) the delayed
  // system answers 300 ms late, so its windows 6 (requests of [6, 6.7)) and 7 (those of
  // [6.7, 7)) both have a P99 above 100 ms.
  const ScriptResult r = run_lua(R"(
local lab = require "hldlab"
local exp = lab.experiment{ duration = "10s" }
exp:workload{ arrivals = lab.constant{ rps = 100 } }
local failing = exp:add{ lesson = "passthrough", variant = "instant", label = "failing" }
local slow = exp:add{ lesson = "passthrough", variant = "delayed", params = { delay = "5ms" }, label = "slow" }
failing:at("3s", function(s) s:inject("errors", { rate = 1 }) end)
failing:at("5s", function(s) s:clear("errors") end)
slow:at("6s", function(s) s:inject("latency", { delay = "300ms" }) end)
slow:at("7s", function(s) s:clear("latency") end)
local r = exp:run()
local f = lab.steady_state(r.failing, { success = 0.999, p99 = "100ms" })
local s = lab.steady_state(slow, { success = 0.999, p99 = "100ms" })
local late = lab.steady_state(slow, { p99 = "100ms", from = "8s" })
print(f.held, f.windows, f.violating, f.first_violation, f.violations[1].why, f.worst_success)
print(s.held, s.windows, s.violating, s.first_violation, s.violations[2].at, s.violations[1].why)
print(late.held, late.windows, late.violating, late.first_violation)
)");
  INFO(r.error);
  REQUIRE(r.error.empty());
  REQUIRE_THAT(r.output, Catch::Contains("false\t10\t2\t3.0\tsuccess below the hypothesis\t0.0"));
  REQUIRE_THAT(r.output, Catch::Contains("false\t10\t2\t6.0\t7.0\tP99 above the hypothesis"));
  REQUIRE_THAT(r.output, Catch::Contains("true\t2\t0\tnil"));
}

TEST_CASE("lab.steady_state counts a window where requests arrived and none completed as a hang") {
  // Requests of [2 s, 3 s) vanish into a black hole and time out 5 s later: window 2 has 100
  // arrivals and no completion; window 7 receives their timeouts (no answer).
  const ScriptResult r = run_lua(R"(
local lab = require "hldlab"
local exp = lab.experiment{ duration = "10s" }
exp:workload{ arrivals = lab.constant{ rps = 100 } }
local sys = exp:add{ lesson = "passthrough", variant = "instant" }
sys:at("2s", function(s) s:inject("blackhole", { timeout = "5s" }) end)
sys:at("3s", function(s) s:clear("blackhole") end)
exp:run()
local h = lab.steady_state(sys, { success = 0.99 })
print(h.violating, h.violations[1].at, h.violations[1].why, h.violations[1].completed,
      h.violations[2].at, h.violations[2].why)
)");
  INFO(r.error);
  REQUIRE(r.error.empty());
  REQUIRE_THAT(r.output, Catch::Contains("2\t2.0\tno request completed\t0\t7.0\tsuccess below"));
}

TEST_CASE("lab.steady_state refuses a hypothesis it cannot judge") {
  const auto error = [](const std::string& hypothesis) {
    return run_lua("local lab = require 'hldlab'\nlocal exp = lab.experiment{ duration = '2s' }\n"
                   "local sys = exp:add{ lesson = 'passthrough', variant = 'instant' }\n"
                   "exp:run()\nlab.steady_state(sys, " +
                   hypothesis + ")")
        .error;
  };
  REQUIRE_THAT(error("{}"), Catch::Contains("needs success = (a fraction) or p99"));
  REQUIRE_THAT(error("{ success = 2 }"), Catch::Contains("success must be a fraction"));
  REQUIRE_THAT(error("{ p99 = '1s', sucess = 0.9 }"), Catch::Contains("did you mean 'success'"));
  REQUIRE_THAT(error("{ p99 = '1s', from = '2s', to = '1s' }"), Catch::Contains("`to` must be after"));
}
