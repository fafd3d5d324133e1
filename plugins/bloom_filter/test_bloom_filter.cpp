#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

TEST_CASE("placeholder") {
  CHECK(true);
}
