// The HTML report: structure, data in every chart, fault markers, claims, message diagrams.
#include <catch2/catch.hpp>
#include <string>

#include "hldlab/runtime/progress.hpp"
#include "hldlab/runtime/report.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

const char* kScript = R"(
local lab = require "hldlab"
local e = lab.experiment{ name = "two systems <&>", seed = 7, duration = "20s" }
e:workload{ arrivals = lab.poisson{ rps = 50 }, service = "1ms" }
e:add{ lesson = "passthrough", variant = "instant", label = "fast" }
e:add{ lesson = "passthrough", variant = "delayed", label = "slow", params = { delay = "20ms" } }
e:at("10s", function(sys) sys:inject("errors", { rate = 0.5 }) end)
local r = e:run()
lab.expect(r.fast.seen > 0, "the fast one saw requests")
lab.check(r.slow.seen > 0, "the slow one saw requests")
lab.expect(false, "a claim that fails")
)";

}  // namespace

TEST_CASE(
    "the report of a script: one self-contained page with a chart per figure and the claims") {
  const ScriptResult result =
      run_script_text(kScript, "report_test", hldlab::testing::test_plugins(), {});
  REQUIRE(result.experiments.size() == 1);
  const std::string html = render_report("hldlab: test", {{"test", "", "", "", "", &result}});

  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(count(html, "<script") == 0);
  CHECK(count(html, "http://") + count(html, "https://") == 0);
  CHECK(count(html, "prefers-color-scheme:dark") == 1);
  // Throughput, P99, errors (the fault makes some), in flight, hit ratio (the instant variant
  // hits on odd keys); the lesson metrics stay 0 (not charted); the CDF; and two figures as
  // bars (seen, background_done).
  CHECK(count(html, "<svg class=\"chart line\"") == 5);
  CHECK(count(html, "<svg class=\"chart cdf\"") == 1);
  CHECK(count(html, "<svg class=\"chart bars\"") == 2);
  CHECK(count(html, "<h4>Hit ratio") == 1);
  // Every chart has data: a line per system (x2 per line chart, with the CDF), bars per system.
  CHECK(count(html, "<polyline points=\"") == 2 * 6 - 1);  // "slow" has no hit ratio
  // The fault injection is marked (once, though it hit both systems) with its name.
  CHECK(count(html, "<g class=\"fault\">") == 5 * 1);
  CHECK(html.find("10s: errors") != std::string::npos);
  // Names are escaped; the claims show with their marks, the sanity check is labelled.
  CHECK(html.find("two systems &lt;&amp;&gt;") != std::string::npos);
  CHECK(html.find("two systems <&>") == std::string::npos);
  CHECK(count(html, "✓</span>the fast one saw requests") == 1);
  CHECK(count(html, "✗</span>a claim that fails") == 1);
  CHECK(count(html, "(sanity check)") == 1);
  // Hover: every line chart has hover bands with a title per band.
  CHECK(count(html, "<rect class=\"hover\"") == 5 * 8);
}

TEST_CASE("the report draws a space-time diagram for a traced system, and a tour summary") {
  ScriptResult result;
  ExperimentResult e;
  e.name = "traced";
  e.duration = 2;
  SystemResult s;
  s.label = "raft";
  s.naive = true;
  s.timeline_window = 1;
  s.timeline.resize(2);
  s.timeline[0].outcomes[0] = 10;
  s.timeline[1].outcomes[0] = 12;
  s.latency_cdf = {{0.001, 0.5}, {0.002, 1.0}};
  s.trace_from = 1;
  s.trace_to = 1.5;
  s.messages = {{0, 1, seconds(1.1), seconds(1.12), "AppendEntries t=2"},
                {1, 0, seconds(1.12), seconds(1.14), "ok"}};
  s.node_events = {{2, seconds(1.2), "crash"}};
  e.systems.push_back(s);
  result.experiments.push_back(e);
  const std::string html =
      render_report("tour", {{"a", "A lesson", "PASS", "1/1", "it works", &result},
                             {"b", "B lesson", "NO SCRIPT", "-", "no b.lua", nullptr}});
  CHECK(count(html, "<svg class=\"chart messages\"") == 1);
  CHECK(count(html, "marker-end=") == 2);
  CHECK(html.find("n0 → n1 AppendEntries t=2") != std::string::npos);
  CHECK(html.find(">n2</text>") != std::string::npos);  // three nodes
  CHECK(html.find("crash") != std::string::npos);
  // The tour: a summary table linking each lesson's section.
  CHECK(count(html, "<table class=\"summary\">") == 1);
  CHECK(html.find("<a href=\"#a\">a</a>") != std::string::npos);
  CHECK(html.find("id=\"b\"") != std::string::npos);
  CHECK(html.find("NO SCRIPT") != std::string::npos);
}

TEST_CASE(
    "the progress line: time against duration, bar, speed, requests; P99 per system when paced") {
  Experiment e({.name = "progress", .duration = seconds(10)});
  e.add(hldlab::testing::test_plugins(), "passthrough", "instant", {}, "fast");
  const std::string plain = Progress::line(e, 1.0, 0, 200, false);
  CHECK(plain.find("progress  0.0s/10.0s ") == 0);
  CHECK(plain.find("░░░░") != std::string::npos);
  CHECK(plain.find(" 0%") != std::string::npos);
  CHECK(plain.find("0 req") != std::string::npos);
  CHECK(plain.find("fast") == std::string::npos);  // not paced: no per-system figures
  CHECK(plain.find('\033') == std::string::npos);  // no colour asked
  const std::string paced = Progress::line(e, 1.0, 1, 200, true);
  CHECK(paced.find(" | fast p99 ") != std::string::npos);
  CHECK(paced.find("\033[36m") != std::string::npos);
  // Cut to the terminal's width, whole characters only.
  const std::string cut = Progress::line(e, 1.0, 1, 30, false);
  std::size_t columns = 0;
  for (unsigned char c : cut) columns += (c & 0xC0) != 0x80;
  CHECK(columns == 30);
}

TEST_CASE("a sweep in the report: a chart per figure group, a band and a point per value") {
  const char* script = R"(
local lab = require "hldlab"
lab.sweep{ name = "delays", seeds = 3, params = { delay = { 1, 2, 4 }, rps = { 50, 100 } },
  run = function(p, seed)
    local e = lab.experiment{ seed = seed, duration = "2s" }
    e:workload{ arrivals = lab.poisson{ rps = p.rps } }
    e:add{ lesson = "passthrough", variant = "delayed", params = { delay = p.delay .. "ms" } }
    local r = e:run()
    return { latency = { p50 = r.delayed.p50, p99 = r.delayed.p99 }, seen = r.delayed.seen }
  end }
)";
  const ScriptResult result =
      run_script_text(script, "sweep_report", hldlab::testing::test_plugins(), {});
  REQUIRE(result.error.empty());
  const std::string html = render_report("hldlab: sweep", {{"sweep", "", "", "", "", &result}});
  // Groups "latency" (p50, p99) and "seen"; x = delay (3 values); a line per figure and per rps.
  CHECK(count(html, "<svg class=\"chart sweep\"") == 2);
  CHECK(count(html, "<polygon points=") == 2 * 2 + 2);     // a band per line
  CHECK(count(html, "<circle r=\"2.5\"") == (4 + 2) * 3);  // a mean per line and value
  CHECK(count(html, ">p99 · rps=100</text>") == 1);
  CHECK(count(html, "<rect class=\"hover\"") == 2 * 3);
  CHECK(html.find("Sweep: delays") != std::string::npos);
}
