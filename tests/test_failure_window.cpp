// FailureWindow on its own: the count-based sliding window a circuit breaker judges.
#include <catch2/catch.hpp>
#include <stdexcept>

#include "hldlab/failure_window.hpp"

using namespace hldlab;

TEST_CASE("a failure window slides: once full, each outcome recorded forgets the oldest") {
  FailureWindow w(3);
  w.record(false);
  w.record(true);
  w.record(true);
  CHECK(w.recorded() == 3);
  CHECK(w.failures() == 1);
  w.record(true);  // the failure, oldest, drops out
  CHECK(w.recorded() == 3);
  CHECK(w.failures() == 0);
  for (int i = 0; i < 3; ++i) w.record(false);
  CHECK(w.failures() == 3);
  w.record(true);
  CHECK(w.failures() == 2);
}

TEST_CASE("a failure window trips at the failure rate, not below it, nor before the least calls") {
  FailureWindow w(4);
  w.record(false);
  w.record(false);
  CHECK_FALSE(w.tripped(3, 0.5));  // every call failed, but 2 calls are fewer than the 3 needed
  w.record(true);
  CHECK(w.tripped(3, 0.5));  // 2 of 3 failed
  w.record(true);            // F F S S: 2 of 4, exactly the rate
  CHECK(w.tripped(4, 0.5));
  CHECK_FALSE(w.tripped(4, 0.75));
  w.record(true);  // the oldest failure drops out: F S S S
  CHECK(w.failures() == 1);
  CHECK_FALSE(w.tripped(4, 0.5));
}

TEST_CASE("a cleared failure window forgets every outcome and keeps its size") {
  FailureWindow w(3);
  for (int i = 0; i < 5; ++i) w.record(false);
  w.clear();
  CHECK(w.recorded() == 0);
  CHECK(w.failures() == 0);
  CHECK_FALSE(w.tripped(1, 0.0));              // no outcome held: fewer than the least calls
  for (int i = 0; i < 4; ++i) w.record(true);  // old failures do not come back as it wraps
  CHECK(w.size() == 3);
  CHECK(w.recorded() == 3);
  CHECK(w.failures() == 0);
  CHECK_THROWS_AS(FailureWindow(0), std::invalid_argument);
}
