#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"raw_push", "rollup_push", "rollup_pull"};

std::vector<hldlab::testing::SystemSpec> all(const Map& params) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"metrics_monitoring", v, params});
  return systems;
}

}  // namespace

TEST_CASE(
    "one target, 10 samples/s for 130 s: raw stores 16 bytes per sample, rollups 4 buckets, the "
    "same sum") {
  // Minutes 0, 1, 2 and hour 0: four buckets of 40 bytes.
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(10, 0, 1),
                                                 seconds(130), all({{"targets", 1}}));
  const auto& raw = row(r, "raw_push");
  REQUIRE(raw.requests == 1299);
  CHECK(figure(raw, "stored_bytes") == 1299 * 16);
  for (const char* v : {"rollup_push", "rollup_pull"}) {
    INFO(v);
    CHECK(figure(row(r, v), "stored_bytes") == 4 * 40);
    CHECK(figure(row(r, v), "total") == Approx(figure(raw, "total")).epsilon(1e-12));
    CHECK(figure(row(r, v), "series") == 1);
    CHECK(figure(row(r, v), "query_points_30d") == 720);
  }
}

TEST_CASE("the 30-day projections follow from the measured rate exactly") {
  // Samples at 0.1, 0.2, ..., 9.9 s: 99 samples over 9.9 s, 10 per second.
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(10, 0, 1),
                                                 seconds(10), all({{"targets", 1}}));
  CHECK(figure(row(r, "raw_push"), "bytes_30d") == Approx(10.0 * 2592000 * 16));
  CHECK(figure(row(r, "raw_push"), "query_points_30d") == Approx(10.0 * 2592000));
  CHECK(figure(row(r, "rollup_push"), "bytes_30d") == Approx((43200.0 + 720) * 40));
}

TEST_CASE("a user-id label makes one series per (target, user) seen; rollups one per target") {
  Workload w = hldlab::testing::poisson_workload(1000, 0, 1000);
  w.clients = 7;
  const auto r = hldlab::testing::run_experiment(w, seconds(2), all({{"targets", 3}}));
  CHECK(figure(row(r, "raw_push"), "series") == 21);  // 3 x 7, all seen in 2000 samples
  CHECK(figure(row(r, "raw_push"), "series_memory") == 21 * 4096);
  CHECK(figure(row(r, "rollup_push"), "series") == 3);
  CHECK(figure(row(r, "rollup_pull"), "series") == 3);
}

TEST_CASE(
    "a dead target: pull alerts within one scrape interval, push after the staleness window "
    "(to the check interval)") {
  // 50 targets, 5000 samples/s: each target sends every 10 ms on average; all die at 5 s.
  const auto r = hldlab::testing::run_experiment(
      hldlab::testing::poisson_workload(5000, 0, 50),
      {.duration = seconds(10), .drain = seconds(600)}, all({}), [](Experiment& e) {
        for (int t = 0; t < 50; ++t)
          hldlab::testing::inject_everywhere(e, seconds(5), "kill_target", {{"target", t}});
      });
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "alerts") == 50);
    CHECK(s.completed == s.requests);
    CHECK(s.count(Outcome::error) > 20000);  // every sample after 5 s is lost
  }
  // Push: the last sample came at most ~0.1 s before the death; the check runs every second.
  CHECK(figure(row(r, "rollup_push"), "alert_delay_max") <= 301);
  CHECK(figure(row(r, "rollup_push"), "alert_delay_mean") >= 299);
  CHECK(figure(row(r, "raw_push"), "alert_delay_mean") ==
        figure(row(r, "rollup_push"), "alert_delay_mean"));
  // Pull: uniform scrape phases: the delay is uniform in [0, 15 s): mean 7.5, sd 4.33 / sqrt(50).
  CHECK(figure(row(r, "rollup_pull"), "alert_delay_max") <= 15);
  CHECK(figure(row(r, "rollup_pull"), "alert_delay_mean") == Approx(7.5).margin(2.0));
}

TEST_CASE("the script's claims hold") {
  const ScriptResult r = hldlab::testing::run_script_file("metrics_monitoring.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
