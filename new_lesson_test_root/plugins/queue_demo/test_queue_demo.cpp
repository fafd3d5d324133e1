#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::row;

TEST_CASE("load shedding keeps the P99 of accepted requests far below the unbounded queue's") {
  // 4 workers x 10 ms = 400 rps of capacity: 500 rps is a 25% overload.
  const auto r = hldlab::testing::run_experiment(
      hldlab::testing::poisson_workload(500, milliseconds(10)), seconds(60),
      {{"queue_demo", "unbounded_queue"}, {"queue_demo", "load_shedding"}});
  CHECK(row(r, "load_shedding").p99 < row(r, "unbounded_queue").p99 / 10);
  CHECK(row(r, "load_shedding").count(Outcome::rejected) > 0);
  CHECK(row(r, "unbounded_queue").count(Outcome::rejected) == 0);
}

TEST_CASE("the queue_demo script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("queue_demo.lua");
  INFO(r.error << r.output);
  REQUIRE(r.exit_code() == 0);
}
