#include <catch2/catch.hpp>

#include "hldlab/runtime/params.hpp"

using namespace hldlab;

TEST_CASE("durations parse with every unit and reject anything else") {
  REQUIRE(parse_duration("250ms") == milliseconds(250));
  REQUIRE(parse_duration("1.5s") == seconds(1.5));
  REQUIRE(parse_duration("2m") == seconds(120));
  REQUIRE(parse_duration("1h") == seconds(3600));
  REQUIRE(parse_duration("100us") == microseconds(100));
  REQUIRE(parse_duration("7ns") == 7);
  REQUIRE(parse_duration("3") == seconds(3));
  REQUIRE_THROWS_WITH(parse_duration("fast"), Catch::Contains("not a duration"));
  REQUIRE_THROWS_WITH(parse_duration("5 parsecs"), Catch::Contains("unknown unit"));
  REQUIRE_THROWS_WITH(parse_duration("-5s"), Catch::Contains("between 0"));
  REQUIRE(duration_from(Value(0.5), "x") == milliseconds(500));
}

namespace {
const std::vector<ParamSpec> specs = {
    {"backends", ParamType::integer, 10, "number of backends", 1, 100},
    {"ratio", ParamType::real, 0.5, "a fraction", 0, 1},
    {"mode", ParamType::string, "fast", "mode", 0, 0, {"fast", "safe"}},
    {"timeout", ParamType::duration, "30s", "timeout", 0.001, 60},
    {"checks", ParamType::boolean, true, "on/off"},
    {"weights", ParamType::number_list, List{}, "weights", 0, 10},
};
}

TEST_CASE("absent parameters take their defaults, given ones their converted values") {
  const Params p = validate_params(specs, {{"backends", 3}, {"timeout", "250ms"}}, "lesson");
  REQUIRE(p.integer("backends") == 3);
  REQUIRE(p.real("ratio") == 0.5);
  REQUIRE(p.string("mode") == "fast");
  REQUIRE(p.duration("timeout") == milliseconds(250));
  REQUIRE(p.boolean("checks"));
  REQUIRE(p.numbers("weights").empty());
  REQUIRE(validate_params(specs, {{"backends", 4.0}}, "l").integer("backends") == 4);
}

TEST_CASE("an unknown parameter is refused with a did-you-mean") {
  REQUIRE_THROWS_WITH(validate_params(specs, {{"bakends", 3}}, "load_balancing"),
                      "load_balancing: unknown parameter 'bakends' (did you mean 'backends'?); "
                      "known: backends, ratio, mode, timeout, checks, weights");
}

TEST_CASE("wrong types, ranges and choices are refused naming the parameter") {
  REQUIRE_THROWS_WITH(validate_params(specs, {{"backends", "ten"}}, "l"),
                      "l: parameter 'backends' must be an integer, not a string");
  REQUIRE_THROWS_WITH(validate_params(specs, {{"backends", 2.5}}, "l"),
                      Catch::Contains("whole number"));
  REQUIRE_THROWS_WITH(validate_params(specs, {{"backends", 0}}, "l"),
                      Catch::Contains("out of range [1, 100]"));
  REQUIRE_THROWS_WITH(validate_params(specs, {{"ratio", 1.5}}, "l"),
                      Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(
      validate_params(specs, {{"mode", "fsat"}}, "l"),
      Catch::Contains("not one of: fast, safe") && Catch::Contains("did you mean 'fast'"));
  REQUIRE_THROWS_WITH(validate_params(specs, {{"timeout", "2h"}}, "l"),
                      Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(validate_params(specs, {{"checks", 1}}, "l"),
                      Catch::Contains("must be a boolean"));
  REQUIRE_THROWS_WITH(validate_params(specs, {{"weights", List{1, "x"}}}, "l"),
                      Catch::Contains("only numbers"));
}

TEST_CASE("a duration parameter whose range goes below zero is an offset that takes a minus") {
  const std::vector<ParamSpec> offset = {
      {"offset", ParamType::duration, "10s", "clock offset", -86400, 86400}};
  CHECK(validate_params(offset, {{"offset", "-1m30s"}}, "l").duration("offset") == seconds(-90));
  CHECK(validate_params(offset, {{"offset", -2.5}}, "l").duration("offset") == milliseconds(-2500));
  CHECK(validate_params(offset, {{"offset", "250ms"}}, "l").duration("offset") ==
        milliseconds(250));
  CHECK_THROWS_WITH(validate_params(offset, {{"offset", "-2d"}}, "l"),
                    Catch::Contains("out of range"));
  CHECK_THROWS_WITH(validate_params(offset, {{"offset", "--1s"}}, "l"),
                    Catch::Contains("'--1s' is not an offset"));
  CHECK_THROWS_WITH(validate_params(offset, {{"offset", "-x"}}, "l"),
                    Catch::Contains("'-x' is not an offset"));
  // Elsewhere a duration is a length of time: a minus is refused.
  CHECK_THROWS_WITH(validate_params(specs, {{"timeout", "-1s"}}, "l"),
                    Catch::Contains("between 0"));
  CHECK_THROWS_WITH(validate_params(specs, {{"timeout", -1}}, "l"), Catch::Contains("between 0"));
}

TEST_CASE("a required parameter without a default must be given") {
  const std::vector<ParamSpec> required = {
      {"backend", ParamType::integer, Value(), "which one", 0, 9}};
  REQUIRE_THROWS_WITH(validate_params(required, {}, "fault kill"),
                      Catch::Contains("'backend' is required"));
  REQUIRE(validate_params(required, {{"backend", 3}}, "fault kill").integer("backend") == 3);
}

TEST_CASE("closest match finds likely typos and nothing for unrelated words") {
  REQUIRE(closest_match("round_robn", {"round_robin", "p2c"}) == "round_robin");
  REQUIRE(closest_match("zzzzzz", {"round_robin", "p2c"}).empty());
}

TEST_CASE("a list taken from a temporary value outlives the temporary") {
  auto make = [] { return Value(List{1, 2, 3}); };
  std::int64_t sum = 0;
  for (const Value& v : make().as_list())
    sum += v.as_int();  // would read freed memory if by reference
  REQUIRE(sum == 6);
  REQUIRE(Value(Map{{"a", 1}}).as_map().at("a").as_int() == 1);
  REQUIRE(Value("text").as_string() == "text");
}
