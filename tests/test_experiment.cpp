#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "hldlab/runtime/stop.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {
/// One second of traffic to two pass-through systems; at 0.5 s each starts background work that
/// ends `after_seconds` later, held (Context::hold) by the first system and not by the second.
ExperimentResult run_with_background(double after_seconds, Time drain) {
  Experiment e({.duration = seconds(1), .drain = drain});
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 100;
  e.set_workload(w);
  SystemSlot& held = e.add(hldlab::testing::test_plugins(), "passthrough", "instant", {}, "held");
  SystemSlot& unheld =
      e.add(hldlab::testing::test_plugins(), "passthrough", "instant", {}, "unheld");
  e.at(milliseconds(500), [&] {
    held.call("background", {{"after", after_seconds}, {"held", true}});
    unheld.call("background", {{"after", after_seconds}, {"held", false}});
  });
  return e.run();
}

double background_done(const ExperimentResult& r, const std::string& label) {
  return row(r, label).figures.at("background_done").as_double();
}
}  // namespace

TEST_CASE("held background work runs after the last request completes, unheld work is dropped") {
  const ExperimentResult r = run_with_background(5, seconds(60));
  CHECK(row(r, "held").completed == 99);
  CHECK(background_done(r, "held") == 1);
  CHECK(background_done(r, "unheld") == 0);  // the drain ended with the last request
}

TEST_CASE("background work done before the traffic ends needs no hold") {
  const ExperimentResult r = run_with_background(0.1, seconds(60));
  CHECK(background_done(r, "held") == 1);
  CHECK(background_done(r, "unheld") == 1);
}

TEST_CASE("a hold never keeps the experiment past its drain limit") {
  const ExperimentResult r = run_with_background(30, seconds(10));
  CHECK(background_done(r, "held") == 0);
  CHECK(row(r, "held").completed == 99);
}

TEST_CASE("a release without a hold is refused with a clear error") {
  Experiment e;
  SystemSlot& s = e.add(hldlab::testing::test_plugins(), "passthrough", "instant");
  REQUIRE_THROWS_WITH(s.call("release", {}), Catch::Contains("without a matching hold"));
}

// ---- Trustworthy results ---------------------------------------------------------------------

namespace {

const PluginRegistry& plugins() {
  return hldlab::testing::test_plugins();
}

/// One experiment over the pass-through test lesson: `systems` are (variant, label) pairs.
ExperimentResult run_passthrough(const Workload& w, Time duration,
                                 const std::vector<std::pair<std::string, std::string>>& systems,
                                 const std::function<void(Experiment&)>& setup = {},
                                 ExperimentConfig config = {}) {
  config.duration = duration;
  Experiment e(config);
  e.set_workload(w);
  for (const auto& [variant, label] : systems)
    e.add(plugins(), "passthrough", variant, {{"delay", 0.1}}, label);
  if (setup) setup(e);
  return e.run();
}
}  // namespace

TEST_CASE("a system measures the same alone, first or last among others") {
  const Workload w = poisson_workload(500, milliseconds(5));
  auto with_background = [](Experiment& e) {
    e.at(seconds(1), [&e] {
      for (const auto& s : e.systems())
        if (s->variant() == "delayed") s->call("background", {{"after", 3.0}, {"held", true}});
    });
  };
  const auto alone = run_passthrough(w, seconds(2), {{"delayed", "d"}}, with_background);
  const auto first =
      run_passthrough(w, seconds(2), {{"delayed", "d"}, {"instant", "i"}}, with_background);
  const auto last =
      run_passthrough(w, seconds(2), {{"instant", "i"}, {"delayed", "d"}}, with_background);
  CHECK(to_json(row(alone, "d")).dump() == to_json(row(first, "d")).dump());
  CHECK(to_json(row(alone, "d")).dump() == to_json(row(last, "d")).dump());
  CHECK(row(alone, "d").end == Approx(4.0));   // held work ends at 1 s + 3 s
  CHECK(row(first, "i").end == Approx(2.0));  // the instant one ends with its traffic
}

TEST_CASE("requests that never finish are reported as unfinished and censor the quantiles") {
  // 100 rps, service 100 ms on one worker: 10 rps of capacity. 5999 arrive in 60 s; by the end
  // of the 60 s drain (120 s) about 1200 are done and the rest are still queued.
  const auto r = hldlab::testing::run_experiment(
      constant_workload(100, milliseconds(100)), seconds(60),
      {{"load_balancing", "round_robin", {{"backends", 1}}, "one_backend"}});
  const SystemResult& s = row(r, "one_backend");
  CHECK(s.requests == 5999);
  CHECK(s.completed == 1199);  // the first at 0.01 s + 0.1 s, then one every 0.1 s up to 120 s
  CHECK(s.unfinished == s.requests - s.completed);
  CHECK(s.end == Approx(120));
  // Requests answered within 60 s are the first ~667; the median is one still waiting at 120 s
  // (it arrived before 60 s): at least 60 s, and known only as a lower bound.
  CHECK(s.p50 > 60);
  CHECK(s.lower_bound("p50"));
  CHECK(s.lower_bound("p99"));
  CHECK(s.lower_bound("max"));
  CHECK(s.max >= 60);
  const std::string table = format_table(r);
  CHECK_THAT(table, Catch::Contains("≥") && Catch::Contains("unfinished") &&
                        Catch::Contains("4800 requests never finished"));
}

TEST_CASE("a system that stops answering cannot look fast") {
  const auto r = run_passthrough(constant_workload(100), seconds(10), {{"instant", "i"}},
                                 [](Experiment& e) {
                                   e.at(seconds(7), [&e] {
                                     e.systems()[0]->inject("blackhole", {{"timeout", 3600.0}});
                                   });
                                 });
  const SystemResult& s = row(r, "i");
  CHECK(s.requests == 999);     // 0.01 s .. 9.99 s
  CHECK(s.unfinished == 300);   // [7 s, 10 s) at 100 rps
  CHECK(s.end == Approx(70));   // drained for the whole 60 s
  CHECK(s.p50 == 0);            // 699 were answered at once
  CHECK_FALSE(s.lower_bound("p50"));
  CHECK(s.p90 >= 60);  // the unanswered 30% waited at least the drain
  CHECK(s.lower_bound("p90"));
  CHECK(s.lower_bound("p99"));
}

TEST_CASE("a saturated server reports its capacity as throughput") {
  // Capacity 1 request per second, offered 5 rps for 60 s: answers go on through the drain.
  Workload w = constant_workload(5, seconds(1));
  const auto r = hldlab::testing::run_experiment(
      w, seconds(60), {{"load_balancing", "round_robin", {{"backends", 1}}, "one"}});
  CHECK(row(r, "one").throughput == Approx(1.0).epsilon(0.01));
}

TEST_CASE("identical systems get identical faults, whatever their labels") {
  auto errors_at_start = [](Experiment& e) {
    e.at(0, [&e] {
      for (const auto& s : e.systems()) s->inject("errors", {{"rate", 0.5}});
    });
  };
  const auto r = run_passthrough(poisson_workload(1000), seconds(10),
                                 {{"instant", "a"}, {"instant", "b"}}, errors_at_start);
  const auto renamed =
      run_passthrough(poisson_workload(1000), seconds(10), {{"instant", "zzz"}}, errors_at_start);
  CHECK(row(r, "a").count(Outcome::error) == row(r, "b").count(Outcome::error));
  CHECK(row(r, "a").count(Outcome::error) == row(renamed, "zzz").count(Outcome::error));
  CHECK(row(r, "a").count(Outcome::error) > 4500);
}

TEST_CASE("turning writes and sizes on changes no key of the request stream") {
  // The instant variant answers odd keys with a hit: equal hit counts mean equal keys.
  Workload plain = poisson_workload(2000);
  Workload busy = plain;
  busy.write_share = 0.3;
  busy.has_sizes = true;
  busy.sizes = Distribution::exponential(100);
  const auto a = run_passthrough(plain, seconds(5), {{"instant", "i"}});
  const auto b = run_passthrough(busy, seconds(5), {{"instant", "i"}});
  CHECK(row(a, "i").requests == row(b, "i").requests);
  CHECK(row(a, "i").count(Outcome::hit) == row(b, "i").count(Outcome::hit));
}

TEST_CASE("poisson arrivals keep their rate at 1e8 and 1e9 requests per second") {
  for (double rps : {1e8, 1e9}) {
    INFO(rps);
    Workload w = poisson_workload(rps);
    const Time duration = rps > 5e8 ? milliseconds(10) : milliseconds(100);
    const auto r = run_passthrough(w, duration, {{"instant", "i"}});
    const double expected = rps * to_seconds(duration);
    CHECK(std::abs(row(r, "i").requests - expected) < 5 * std::sqrt(expected));
  }
}

TEST_CASE("a 30-day run and a 72-hour overload give finite, positive figures") {
  const auto month = run_passthrough(constant_workload(0.001, seconds(1)), seconds(30 * 86400.0),
                                     {{"delayed", "d"}});
  CHECK(row(month, "d").requests == 2591);
  CHECK(row(month, "d").p50 == Approx(0.1).epsilon(0.01));
  // 72 h of a queue that only grows (10 ms of work every 9.9 ms): the mean latency is huge but
  // positive, and the sum behind it does not overflow.
  Histogram h;
  for (int i = 0; i < 1000; ++i) h.record(seconds(72 * 3600.0), 1'000'000);
  CHECK(h.mean() == Approx(72 * 3600 * 1e9));
}

TEST_CASE("a service distribution that can exceed 292 years is refused unless capped") {
  Experiment e;
  Workload w = poisson_workload(10);
  w.service = Distribution::pareto(1e6, 0.1);
  CHECK_THROWS_WITH(e.set_workload(w), Catch::Contains("beyond 292 years"));
  w.service = w.service.capped(3.6e12);
  CHECK_NOTHROW(e.set_workload(w));
}

TEST_CASE("an event with a negative delay fails its system with an error naming it") {
  const auto r = run_passthrough(constant_workload(100), seconds(1),
                                 {{"negative_delay", "neg"}, {"instant", "ok"}});
  CHECK_THAT(row(r, "neg").error, Catch::Contains("passthrough/negative_delay") &&
                                      Catch::Contains("negative delay"));
  CHECK(row(r, "ok").error.empty());
}

TEST_CASE("a closed loop that never lets time move is stopped with a clear error") {
  Workload w;
  w.arrivals.kind = Arrivals::Kind::closed;
  w.arrivals.clients = 4;
  const auto r = run_passthrough(w, seconds(1), {{"instant", "i"}});
  CHECK_THAT(row(r, "i").error, Catch::Contains("stopped advancing"));
}

TEST_CASE("max_requests applies to closed loops too") {
  Workload w;
  w.arrivals.kind = Arrivals::Kind::closed;
  w.arrivals.clients = 20;  // 20 clients x 10 s / 0.1 s = 2000 requests wanted
  const auto r = run_passthrough(w, seconds(10), {{"delayed", "d"}}, {}, {.max_requests = 1000});
  CHECK_THAT(row(r, "d").error, Catch::Contains("max_requests"));
  CHECK(row(r, "d").requests <= 1000);
}

TEST_CASE("a callback that reschedules itself at the same instant is stopped") {
  Experiment e({.duration = seconds(1)});
  e.set_workload(constant_workload(10));
  e.add(plugins(), "passthrough", "instant");
  std::function<void()> again = [&] { e.at(e.now(), again); };
  e.at(milliseconds(500), again);
  CHECK_THROWS_WITH(e.run(), Catch::Contains("stopped advancing"));
}

TEST_CASE("an overloaded system stops at its memory budget while the others report") {
  ExperimentConfig config;
  config.memory_budget = 8 << 20;  // 8 MiB for two systems: 4 MiB each
  const auto r = run_passthrough(constant_workload(100000), seconds(10),
                                 {{"delayed", "queue"}, {"instant", "fine"}}, {}, config);
  // delay 0.1 s: about 10 000 in flight, 640 KB: fine. Make it hold everything instead.
  CHECK(row(r, "fine").error.empty());
  const auto overload = run_passthrough(
      constant_workload(100000), seconds(10), {{"instant", "queue"}, {"instant", "fine"}},
      [](Experiment& e) {
        e.at(0, [&e] { e.systems()[0]->inject("blackhole", {{"timeout", 3600.0}}); });
      },
      config);
  CHECK_THAT(row(overload, "queue").error,
             Catch::Contains("overload") && Catch::Contains("memory budget 4 MiB"));
  CHECK(row(overload, "fine").error.empty());
  CHECK(row(overload, "fine").completed == row(overload, "fine").requests);
}

TEST_CASE("a warm-up leaves only the requests that arrive after it in the statistics") {
  const auto r = run_passthrough(constant_workload(100), seconds(10), {{"instant", "i"}}, {},
                                 {.warmup = seconds(4)});
  CHECK(row(r, "i").requests == 600);  // arrivals at 4.00 .. 9.99 s
  CHECK(figure(row(r, "i"), "seen") == 600);
}

TEST_CASE("faults and actions in the past or after the run are refused") {
  Experiment e({.duration = seconds(2)});
  e.set_workload(constant_workload(10));
  SystemSlot& s = e.add(plugins(), "passthrough", "instant");
  e.at(seconds(1), [&] { CHECK_THROWS_WITH(e.at(milliseconds(500), [] {}), Catch::Contains("in the past")); });
  e.run();
  CHECK_THROWS_WITH(s.inject("errors", {}), Catch::Contains("after the run"));
  CHECK_THROWS(e.at(seconds(1), [] {}));
}

TEST_CASE("results are identical for any number of worker threads") {
  auto run_with = [](unsigned jobs) {
    Experiment e({.duration = seconds(5)});
    e.set_workload(poisson_workload(20000, milliseconds(2)));
    for (const char* v : {"round_robin", "least_connections", "p2c"})
      e.add(hldlab::testing::registry(), "load_balancing", v);
    RunOptions options;
    options.jobs = jobs;
    return to_json(e.run(options)).dump();
  };
  const std::string one = run_with(1);
  CHECK(run_with(2) == one);
  CHECK(run_with(3) == one);
}

TEST_CASE("a stop request ends the run early with the results so far marked interrupted") {
  Experiment e({.duration = seconds(100)});
  e.set_workload(constant_workload(1000));
  e.add(plugins(), "passthrough", "instant");
  e.at(seconds(10), [] { request_stop(StopReason::interrupted); });
  const auto r = e.run();
  clear_stop();
  CHECK(r.interrupted);
  CHECK(r.systems[0].requests < 20000);
}
