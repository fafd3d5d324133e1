#include <catch2/catch.hpp>

#include "hldlab_test.hpp"
