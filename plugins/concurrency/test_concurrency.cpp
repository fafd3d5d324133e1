#include <catch2/catch.hpp>

#include "explore.hpp"
#include "hldlab_test.hpp"
