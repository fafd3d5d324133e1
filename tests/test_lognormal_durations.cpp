// lognormal_durations on its own: a lognormal from a pair of duration parameters.
#include <catch2/catch.hpp>
#include <stdexcept>

#include "hldlab/lognormal_durations.hpp"

using namespace hldlab;

namespace {
Params durations(Time median, Time p99) {
  return Params(Map{{"db_median", Value(median)}, {"db_p99", Value(p99)}});
}
}  // namespace

TEST_CASE("a median and p99 parameter pair gives the lognormal with that median and p99") {
  const Distribution d = lognormal_durations(durations(milliseconds(2), milliseconds(20)), "db");
  CHECK(d.tail_probability(static_cast<double>(milliseconds(2))) == Approx(0.5));
  CHECK(d.tail_probability(static_cast<double>(milliseconds(20))) == Approx(0.01));
}

TEST_CASE("a p99 below the median is refused in the parameters' names, a zero median is no time") {
  CHECK_THROWS_WITH(lognormal_durations(durations(milliseconds(20), milliseconds(2)), "db"),
                    "db_p99 must be at least db_median");
  CHECK_THROWS_WITH(lognormal_durations(durations(0, milliseconds(2)), "db"),
                    Catch::Contains("db_median must be positive"));
  CHECK(lognormal_durations(durations(0, 0), "db").mean() == 0);
}
