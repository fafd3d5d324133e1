#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"insert_every_click", "processing_time", "event_time",
                                 "event_time_dedup"};

/// A crafted click: delivered at processing time `at` (seconds) with its event time.
struct Crafted {
  double at;
  int ad;
  double event_time;
  int id;
  bool duplicate = false;
};

/// (window start in seconds, ad) -> (count in the database, true count).
using Table = std::map<std::pair<double, int>, std::pair<std::int64_t, std::int64_t>>;

struct CraftedRun {
  ExperimentResult result;
  std::map<std::string, Table> tables;  // by variant, read at the end of the run
};

/// A workload whose only requests would come after `duration`: none at all.
Workload no_traffic(Time duration) {
  Workload w = hldlab::testing::constant_workload(0);
  w.arrivals.spikes.push_back({duration, seconds(1), 1});
  return w;
}

/// No traffic: only `clicks`, delivered through the `click` operation to every variant.
CraftedRun run_crafted(const std::vector<Crafted>& clicks, const Map& params, Time duration) {
  Experiment e({.duration = duration});
  e.set_workload(no_traffic(duration));
  CraftedRun out;
  for (const char* v : kVariants) {
    SystemSlot& slot = e.add(registry(), "click_analytics", v, params);
    for (const Crafted& c : clicks)
      e.at(seconds(c.at), [&slot, c] {
        slot.call(
            "click",
            {{"ad", c.ad}, {"event_time", c.event_time}, {"id", c.id}, {"duplicate", c.duplicate}});
      });
  }
  out.result = e.run();
  for (const auto& s : e.systems()) {
    Table& t = out.tables[s->variant()];
    for (const Value& cell : s->call("table", {}).as_list())
      t[{cell["window"].as_double(), static_cast<int>(cell["ad"].as_int())}] = {
          cell["count"].as_int(), cell["truth"].as_int()};
  }
  return out;
}

/// P(a click lands in another window than its event time's) = E[min(D, W)] / W when its
/// arrival is uniform over whole windows; D lognormal (median m, P99 p).
double misattributed_share(double m, double p99, double w) {
  const double mu = std::log(m), sigma = std::log(p99 / m) / 2.3263478740408408;
  const auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  const double d1 = (mu + sigma * sigma - std::log(w)) / sigma, d2 = d1 - sigma;
  const double mean = std::exp(mu + sigma * sigma / 2);
  const double beyond = mean * phi(d1) - w * phi(d2);  // E[(D - W)+]
  return (mean - beyond) / w;
}

}  // namespace

TEST_CASE(
    "on a crafted stream every variant's counts per window equal the totals computed by hand") {
  // Windows of 10 s, allowed lateness 5 s, watermark = max event time - 1 s; the source is
  // idle 5 s after the last click (t = 26), so at t = 31 the watermark follows the clock.
  const std::vector<Crafted> clicks = {
      {1, 0, 0.5, 1},         {2, 1, 1.8, 2},    {3, 0, 2.9, 3}, {4, 0, 2.9, 3, true},
      {9.5, 1, 9.4, 4},       {10.3, 0, 9.9, 5},  // arrives in the next window (processing time)
      {11.5, 0, 11.2, 6},                         // watermark 10.2: window [0, 10) is written
      {12, 1, 8.0, 7},                            // late, within lateness: window 0 rewritten
      {13, 1, 13, 8},         {17, 0, 16.5, 9},   // watermark 15.5: window 0 forgotten
      {17.5, 0, 4, 10},                           // too late for window 0: dropped
      {18, 0, 16.5, 9, true},                     // a repeat of click 9
      {25, 1, 21, 11},                            // watermark 20: window [10, 20) is written
      {26, 1, 24.9, 12}};
  const Map params{{"window", "10s"},
                   {"allowed_lateness", "5s"},
                   {"out_of_orderness", "1s"},
                   {"idle_timeout", "5s"},
                   {"ads", 2}};
  const auto run = run_crafted(clicks, params, seconds(40));
  // True counts of distinct clicks by event-time window: [0, 10) ad 0: 1 3 5 10, ad 1: 2 4 7;
  // [10, 20) ad 0: 6 9, ad 1: 8; [20, 30) ad 1: 11 12.
  const Table truth_only = {
      {{0, 0}, {0, 4}}, {{0, 1}, {0, 3}}, {{10, 0}, {0, 2}}, {{10, 1}, {0, 1}}, {{20, 1}, {0, 2}}};
  for (const char* v : kVariants) {
    INFO(v);
    REQUIRE(run.tables.at(v).size() == truth_only.size());
    for (const auto& [cell, counts] : truth_only)
      CHECK(run.tables.at(v).at(cell).second == counts.second);
    CHECK(figure(run.result, v, "clicks") == 12);
    CHECK(figure(run.result, v, "duplicates") == 2);
  }
  using Counts = std::map<std::pair<double, int>, std::int64_t>;
  const auto counts = [&](const char* v) {
    Counts out;
    for (const auto& [cell, c] : run.tables.at(v)) out[cell] = c.first;
    return out;
  };
  // One row per delivery, by event time: both repeats counted.
  CHECK(counts("insert_every_click") ==
        Counts{{{0, 0}, 5}, {{0, 1}, 3}, {{10, 0}, 3}, {{10, 1}, 1}, {{20, 1}, 2}});
  // By arrival: [0, 10) ad 0: t 1 3 4, ad 1: 2 9.5; [10, 20) ad 0: 10.3 11.5 17 17.5 18,
  // ad 1: 12 13; [20, 30) ad 1: 25 26.
  CHECK(counts("processing_time") ==
        Counts{{{0, 0}, 3}, {{0, 1}, 2}, {{10, 0}, 5}, {{10, 1}, 2}, {{20, 1}, 2}});
  // Event time: click 10 dropped; without dedup the repeat of 3 fills its place in [0, 10)
  // ad 0 (the errors cancel), the repeat of 9 makes [10, 20) ad 0 one too many.
  CHECK(counts("event_time") ==
        Counts{{{0, 0}, 4}, {{0, 1}, 3}, {{10, 0}, 3}, {{10, 1}, 1}, {{20, 1}, 2}});
  CHECK(counts("event_time_dedup") ==
        Counts{{{0, 0}, 3}, {{0, 1}, 3}, {{10, 0}, 2}, {{10, 1}, 1}, {{20, 1}, 2}});

  const auto f = [&](const char* v, const char* name) { return figure(run.result, v, name); };
  CHECK(f("insert_every_click", "db_writes") == 14);
  CHECK(f("insert_every_click", "count_error") == 2);
  CHECK(f("insert_every_click", "duplicates_counted") == 2);
  CHECK(f("processing_time", "db_writes") == 5);
  CHECK(f("processing_time", "misattributed") == 3);  // clicks 5, 7, 10
  CHECK(f("processing_time", "count_error") == 1 + 1 + 3 + 1);
  CHECK(f("processing_time", "wrong_cells") == 4);
  for (const char* v : {"event_time", "event_time_dedup"}) {
    INFO(v);
    CHECK(f(v, "db_writes") == 2 + 1 + 2 + 1);  // window 0, click 7's update, windows 1, 2
    CHECK(f(v, "late_updates") == 1);
    CHECK(f(v, "dropped_late") == 1);
    CHECK(f(v, "count_error") == 1);
    CHECK(f(v, "misattributed") == 0);
  }
  CHECK(f("event_time", "duplicates_counted") == 2);
  CHECK(f("event_time_dedup", "duplicates_counted") == 0);
  CHECK(f("event_time_dedup", "duplicates_removed") == 2);
  // State peaks at t = 17, before the watermark forgets window 0: two windows with both ads
  // (16 B a count) and, with dedup, ids 1 2 3 4 5 7 and 6 8 9 (8 B each).
  CHECK(f("event_time", "state_bytes") == 4 * 16);
  CHECK(f("event_time_dedup", "state_bytes") == 4 * 16 + 9 * 8);
}

TEST_CASE(
    "inserting every click asks the database for one write per click and loses what its queue "
    "cannot hold; windows write one row per ad and window") {
  // 2000 clicks/s for 10 s, 10 ads, no delay, no repeat. The database writes 2 rows at a time,
  // 2 ms each: 1000 rows/s. Fluid model: the queue (2000) fills in 2 s, then one click in two
  // is refused: 20000 - (10 s x 1000/s + 2000 queued + 2 in service) = 7998 lost.
  Workload w = hldlab::testing::constant_workload(2000, milliseconds(1), 10);
  const Map params{{"ads", 10},       {"window", "1s"},         {"delay_median", 0},
                   {"delay_p99", 0},  {"late_share", 0.0},      {"duplicate_share", 0.0},
                   {"db_workers", 2}, {"db_write_time", "2ms"}, {"db_queue_limit", 2000}};
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"click_analytics", v, params});
  const auto r = run_experiment(w, seconds(10), systems);
  const auto& naive = row(r, "insert_every_click");
  REQUIRE(naive.requests == 19999);  // arrivals at k / 2000 s for k = 1 .. 19999
  CHECK(figure(naive, "lost_clicks") == Approx(7998).margin(2));
  CHECK(naive.count(Outcome::rejected) == figure(naive, "lost_clicks"));
  CHECK(figure(naive, "db_writes") == naive.requests - figure(naive, "lost_clicks"));
  CHECK(figure(naive, "count_error") == figure(naive, "lost_clicks"));
  CHECK(figure(naive, "db_writes_per_s") == Approx(2000).epsilon(0.001));
  CHECK(naive.p99 > 1.9);  // a full queue is 2 s of writes
  for (const char* v : {"processing_time", "event_time", "event_time_dedup"}) {
    INFO(v);
    // Every ad is clicked in every window of 1 s (2000 clicks over 10 ads): 10 rows a window.
    CHECK(figure(r, v, "db_writes") == 10 * 10);
    CHECK(figure(r, v, "db_writes_per_s") == Approx(10 * 10 / 10.0).epsilon(0.001));
    CHECK(figure(r, v, "count_error") == 0);
    CHECK(figure(r, v, "lost_clicks") == 0);
    CHECK(row(r, v).count(Outcome::ok) == 19999);
    CHECK(row(r, v).max == Approx(0.002).epsilon(0.01));  // the append to the log
  }
}

TEST_CASE(
    "a collector outage delivers its clicks late at once: allowed lateness decides which "
    "windows still take them, the rest is dropped and counted") {
  // 100 clicks/s without delay, windows of 10 s; the collector is down from 10 s to 30 s:
  // the 2000 clicks of [10, 30) arrive at 30 s. The source is idle meanwhile, so the watermark
  // follows the clock and reaches 29 s: window [10, 20) has been written, [20, 30) not yet.
  Workload w = hldlab::testing::constant_workload(100, milliseconds(1), 10);
  for (const char* lateness : {"30s", "5s"}) {
    const Map params{
        {"ads", 10},      {"window", "10s"},   {"allowed_lateness", lateness}, {"delay_median", 0},
        {"delay_p99", 0}, {"late_share", 0.0}, {"duplicate_share", 0.0}};
    std::vector<hldlab::testing::SystemSpec> systems;
    for (const char* v : kVariants) systems.push_back({"click_analytics", v, params});
    const auto r = run_experiment(w, seconds(40), systems, 1, [](Experiment& e) {
      hldlab::testing::inject_everywhere(e, seconds(10), "collector_outage", {{"duration", "20s"}});
    });
    INFO("allowed lateness " << lateness);
    // Processing time: all 2000 land in the window [30, 40).
    CHECK(figure(r, "processing_time", "misattributed") == 2000);
    CHECK(figure(r, "processing_time", "count_error") == 2 * 2000);
    for (const char* v : {"event_time", "event_time_dedup"}) {
      INFO(v);
      if (std::string(lateness) == "30s") {
        // 29 < 20 + 30: window [10, 20) takes its 1000 clicks as late updates.
        CHECK(figure(r, v, "dropped_late") == 0);
        CHECK(figure(r, v, "late_updates") == 1000);
        CHECK(figure(r, v, "count_error") == 0);
      } else {
        // 29 >= 20 + 5: window [10, 20) is gone; its 1000 clicks are dropped and counted.
        CHECK(figure(r, v, "dropped_late") == 1000);
        CHECK(figure(r, v, "late_updates") == 0);
        CHECK(figure(r, v, "count_error") == 1000);
      }
    }
    CHECK(figure(r, "insert_every_click", "count_error") == 0);
    for (const char* v : kVariants) {
      INFO(v);
      // A click waits for the collector: those at 10 s wait 20 s.
      CHECK(row(r, v).max >= 20.0);
      CHECK(row(r, v).completed == row(r, v).requests);
    }
  }
}

TEST_CASE(
    "repeated clicks are counted twice without dedup and exactly once with it, as long as "
    "their window is open") {
  Workload w = hldlab::testing::poisson_workload(500, milliseconds(1), 50);
  const Map params{{"ads", 50},         {"delay_median", "50ms"}, {"delay_p99", "1s"},
                   {"late_share", 0.0}, {"duplicate_share", 0.3}, {"retry_after", "2s"}};
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"click_analytics", v, params});
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto r = run_experiment(w, seconds(20), systems, seed);
    INFO("seed " << seed);
    const double dups = figure(r, "event_time", "duplicates");
    CHECK(dups > 0.25 * 10000);
    // The same clicks are repeated in every variant (common random numbers).
    for (const char* v : kVariants) CHECK(figure(r, v, "duplicates") == dups);
    // A repeat arrives 2 s after its click: within the 30 s lateness, never dropped.
    CHECK(figure(r, "event_time", "dropped_late") == 0);
    CHECK(figure(r, "event_time", "duplicates_counted") == dups);
    CHECK(figure(r, "event_time", "count_error") == dups);
    CHECK(figure(r, "event_time_dedup", "duplicates_removed") == dups);
    CHECK(figure(r, "event_time_dedup", "count_error") == 0);
    // The database was never full here: every inserted repeat is one row too many.
    CHECK(figure(r, "insert_every_click", "count_error") == dups);
  }
}

TEST_CASE(
    "processing-time windows misplace a share E[min(D, W)] / W of the clicks, as theory says") {
  // Arrivals uniform over whole windows, delay D lognormal: a click lands in another window
  // than its event time's with probability p = E[min(D, W)] / W, independently: the count is
  // binomial. 10 seeds x 20000 clicks, within 4 standard deviations.
  const double p = misattributed_share(0.05, 1.0, 1.0);
  CHECK(p == Approx(0.10739).epsilon(0.001));  // a Monte Carlo of 10^6 draws gives 0.10739
  Workload w = hldlab::testing::poisson_workload(1000, milliseconds(1), 100);
  const Map params{{"ads", 100}, {"window", "1s"}, {"late_share", 0.0}, {"duplicate_share", 0.0}};
  double misplaced = 0, clicks = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const auto r =
        run_experiment(w, seconds(20), {{"click_analytics", "processing_time", params}}, seed);
    misplaced += figure(r, "processing_time", "misattributed");
    clicks += figure(r, "processing_time", "clicks");
  }
  const double sd = std::sqrt(clicks * p * (1 - p));
  INFO("misplaced " << misplaced << ", expected " << clicks * p << " +- " << sd);
  CHECK(std::abs(misplaced - clicks * p) < 4 * sd);
}

TEST_CASE(
    "event-time windows drop the late clicks that arrive after end + lateness, a share "
    "(M - W/2 - L - out_of_orderness) / M of clicks delayed uniform(0, M)") {
  // A late click for the window ending at `end` arrives at e + D; the watermark then is about
  // arrival - out_of_orderness (ordinary clicks keep it a few ms behind the clock). It is
  // dropped when D >= (end - e) + L + out_of_orderness, with end - e uniform over (0, W].
  const double M = 60, W = 10, L = 10, ooo = 1, late = 0.2;
  const double p = late * (M - W / 2 - L - ooo) / M;
  Workload w = hldlab::testing::poisson_workload(1000, milliseconds(1), 100);
  const Map params{{"ads", 100},
                   {"window", "10s"},
                   {"allowed_lateness", "10s"},
                   {"out_of_orderness", "1s"},
                   {"late_share", late},
                   {"late_max", "60s"},
                   {"duplicate_share", 0.0}};
  double dropped = 0, clicks = 0;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const auto r = run_experiment(w, seconds(30),
                                  {{"click_analytics", "event_time", params},
                                   {"click_analytics", "event_time_dedup", params}},
                                  seed);
    dropped += figure(r, "event_time", "dropped_late");
    clicks += figure(r, "event_time", "clicks");
    // Nothing is repeated: the only errors are the dropped clicks, each one short.
    CHECK(figure(r, "event_time", "count_error") == figure(r, "event_time", "dropped_late"));
    CHECK(figure(r, "event_time_dedup", "dropped_late") == figure(r, "event_time", "dropped_late"));
  }
  const double sd = std::sqrt(clicks * p * (1 - p));
  INFO("dropped " << dropped << ", expected " << clicks * p << " +- " << sd);
  CHECK(std::abs(dropped - clicks * p) < 4 * sd);
}

TEST_CASE("after a warm-up the figures count the clicks and windows that came after it") {
  Workload w = hldlab::testing::constant_workload(100, milliseconds(1), 10);
  const Map params{{"ads", 10},      {"window", "5s"},    {"delay_median", 0},
                   {"delay_p99", 0}, {"late_share", 0.0}, {"duplicate_share", 0.0}};
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"click_analytics", v, params});
  const auto r = run_experiment(w, {.duration = seconds(20), .warmup = seconds(10)}, systems);
  for (const char* v : kVariants) {
    INFO(v);
    // Clicks at 10.00, 10.01, ..., 19.99 s: 1000, in the windows [10, 15) and [15, 20).
    CHECK(figure(r, v, "clicks") == 1000);
    CHECK(row(r, v).requests == 1000);
    CHECK(figure(r, v, "count_error") == 0);
  }
  CHECK(figure(r, "insert_every_click", "db_writes") == 1000);
  // The rows of the windows [5, 10), [10, 15), [15, 20), all written after 10 s.
  CHECK(figure(r, "processing_time", "db_writes") == 3 * 10);
}

TEST_CASE("the click_analytics script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("click_analytics.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}
