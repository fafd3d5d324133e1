#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::row;

namespace {
/// One second of traffic to two pass-through systems; at 0.5 s each starts background work that
/// ends `after_seconds` later, held (Context::hold) by the first system and not by the second.
ExperimentResult run_with_background(double after_seconds, Time drain) {
  ExperimentConfig config;
  config.duration = seconds(1);
  config.drain = drain;
  Experiment e(config);
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
  ExperimentConfig config;
  Experiment e(config);
  SystemSlot& s = e.add(hldlab::testing::test_plugins(), "passthrough", "instant");
  REQUIRE_THROWS_WITH(s.call("release", {}), Catch::Contains("without a matching hold"));
}
