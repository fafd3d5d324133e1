#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// The "session" operation of `variant` (with `params`) on a constant link of `rate` Mbit/s.
Map session(const std::string& variant, const Map& params, double rate) {
  Map out;
  hldlab::testing::run_experiment(
      hldlab::testing::constant_workload(1e-6), milliseconds(1),
      {{"video_streaming", variant, params}}, 1, [&](Experiment& e) {
        out = e.systems()[0]->call("session", Map{{"rate", rate}}).as_map();
      });
  return out;
}

}  // namespace

TEST_CASE(
    "on a constant link throughput ABR settles on the highest rung at or below the link rate") {
  // No RTT and no safety margin: a segment's measured throughput is the link rate exactly.
  const Map params{{"rtt", "0s"}, {"safety", 1.0}};
  const std::pair<double, std::int64_t> cases[] = {{0.5, 0}, {1.0, 1}, {1.5, 2}, {1.9, 3},
                                                   {2.0, 3}, {3.0, 4}, {10.0, 5}};
  for (const auto& [rate, rung] : cases) {
    INFO("link " << rate << " Mbit/s");
    const Map s = session("throughput", params, rate);
    CHECK(s.at("last_rung").as_int() == rung);
    CHECK(s.at("stalled").as_double() == 0);
    CHECK(s.at("switches").as_int() == (rung == 0 ? 0 : 1));  // from the start rung, once
  }
}

TEST_CASE("the top bitrate on a 2 Mbit/s link stalls exactly 4.6 s per segment after the first") {
  // A 4 s segment at 4.3 Mbit/s is 17.2 Mbit: 8.6 s at 2 Mbit/s. Startup 8.6 s; then each
  // segment finds 4 s in the buffer and waits 4.6 s more. 10 segments: 9 stalls.
  const Map s =
      session("fixed_high", {{"rtt", "0s"}, {"video", "40s"}, {"abandon_after", "1h"}}, 2.0);
  CHECK(s.at("startup").as_double() == Approx(8.6));
  CHECK(s.at("stalled").as_double() == Approx(9 * 4.6));
  CHECK(s.at("mean_bitrate").as_double() == Approx(4.3));
  CHECK(s.at("switches").as_int() == 0);
  // The low rung on the same link never stalls: 3 Mbit per segment, 1.5 s to download.
  const Map low = session("fixed_low", {{"rtt", "0s"}, {"video", "40s"}}, 2.0);
  CHECK(low.at("stalled").as_double() == 0);
  CHECK(low.at("startup").as_double() == Approx(1.5));
  CHECK(low.at("mean_bitrate").as_double() == Approx(0.75));
}

TEST_CASE(
    "buffer-based ABR starts on the lowest rung and reaches the top once the buffer is full") {
  const Map s = session("bba", {}, 100.0);
  CHECK(s.at("last_rung").as_int() == 5);
  CHECK(s.at("stalled").as_double() == 0);
  CHECK(s.at("startup").as_double() == Approx(0.05 + 1.2 / 100).epsilon(1e-9));  // rung 0
  CHECK(s.at("switches").as_int() >= 1);
}

TEST_CASE("a viewer who waits longer than abandon_after leaves: the session ends as an error") {
  // 4.3 Mbit/s over 1 Mbit/s: startup 17.25 s, then 13.25 s of stall per segment.
  const Map params{{"link", "steady"}, {"link_median", 1.0}, {"link_p99", 1.0001}};
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(10),
                                                 {.duration = seconds(1), .drain = seconds(600)},
                                                 {{"video_streaming", "fixed_high", params}});
  const auto& s = row(r, "fixed_high");
  REQUIRE(s.requests == 9);
  CHECK(figure(s, "abandoned") == 9);
  CHECK(s.count(Outcome::error) == 9);
  // 17.25 + 3 x 13.25 = 57 s of waiting, the 4th stall reaches 60 s: every session lasts
  // 17.25 + 3 x (4 + 13.25) + 4 + 3 = 76 s.
  CHECK(s.max == Approx(76.0).epsilon(0.01));
}

TEST_CASE(
    "on steady links the top bitrate stalls the sessions whose link is below 4.35 Mbit/s: "
    "P(lognormal < 4.35) within 3 standard deviations") {
  // lognormal(3, P99 20): sigma = ln(20/3) / 2.326; a 17.2 Mbit segment + 50 ms must take
  // under 4 s: rate > 4.354 Mbit/s. P = Phi(ln(4.354 / 3) / sigma) = 0.676; 400 sessions:
  // sd 0.023.
  const double sigma = std::log(20.0 / 3) / 2.326347874;
  const double p = 0.5 * std::erfc(-std::log(17.2 / 3.95 / 3) / sigma / std::sqrt(2.0));
  const auto r = hldlab::testing::run_experiment(
      hldlab::testing::constant_workload(40), seconds(10),
      {{"video_streaming", "fixed_high", {{"link", "steady"}, {"video", "60s"}}}});
  const auto& s = row(r, "fixed_high");
  REQUIRE(s.requests == 399);
  const double share = figure(s, "sessions_with_stall") / figure(s, "sessions");
  CHECK(share == Approx(p).margin(3 * std::sqrt(p * (1 - p) / 399)));
}

TEST_CASE("every variant sees the same links") {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : {"fixed_high", "fixed_low", "throughput", "bba"})
    systems.push_back({"video_streaming", v, {{"video", "20s"}}});
  const auto r =
      hldlab::testing::run_experiment(hldlab::testing::poisson_workload(50), seconds(2), systems);
  for (const char* v : {"fixed_low", "throughput", "bba"})
    CHECK(figure(row(r, v), "mean_link") == figure(row(r, "fixed_high"), "mean_link"));
}

TEST_CASE("the script's claims hold") {
  const ScriptResult r = hldlab::testing::run_script_file("video_streaming.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
