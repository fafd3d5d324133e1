#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "hldlab_test.hpp"

using hldlab::testing::run_cli;

TEST_CASE("hldlab list shows every lesson with its variants") {
  std::string out;
  REQUIRE(run_cli("list", out) == 0);
  REQUIRE_THAT(out, Catch::Contains("load_balancing") && Catch::Contains("round_robin (naive)"));
}

TEST_CASE("hldlab info shows the problem, fix, variants, parameters, faults and metrics") {
  std::string out;
  REQUIRE(run_cli("info load_balancing", out) == 0);
  for (const char* part : {"Problem:", "Fix:", "least_connections", "[naive]", "backends (integer, default 10)",
                           "kill_backend", "hldlab_load_balancing_dead_backend_errors_total"})
    REQUIRE_THAT(out, Catch::Contains(part));
}

TEST_CASE("hldlab info on an unknown lesson exits 2 with a did-you-mean") {
  std::string out;
  REQUIRE(run_cli("info load_balancer", out) == 2);
  REQUIRE_THAT(out, Catch::Contains("did you mean 'load_balancing'"));
}

TEST_CASE("a missing script file exits 2 with a clear message") {
  std::string out;
  REQUIRE(run_cli("run /nonexistent/script.lua", out) == 2);
  REQUIRE_THAT(out, Catch::Contains("cannot open /nonexistent/script.lua"));
}

TEST_CASE("an unknown command or flag exits 2") {
  std::string out;
  REQUIRE(run_cli("frobnicate", out) == 2);
  REQUIRE(run_cli("run x.lua --sed 3", out) == 2);
}

TEST_CASE("a JSON path that cannot be written exits 3 but the results are still printed") {
  const std::string script = std::string(HLDLAB_SOURCE_DIR) + "/tests/scripts/tiny.lua";
  std::string out;
  REQUIRE(run_cli("run " + script + " --json /nonexistent/dir/out.json", out) == 3);
  REQUIRE_THAT(out, Catch::Contains("== tiny") && Catch::Contains("cannot write the JSON results"));
}

TEST_CASE("hldlab run writes the JSON results file") {
  const std::string script = std::string(HLDLAB_SOURCE_DIR) + "/tests/scripts/tiny.lua";
  const std::string path = "cli_results_test.json";
  std::string out;
  REQUIRE(run_cli("run " + script + " --seed 3 --json " + path, out) == 0);
  std::ifstream in(path);
  const auto json = nlohmann::json::parse(in);
  REQUIRE(json["experiments"][0]["seed"] == 3);
  REQUIRE(json["experiments"][0]["systems"][0]["lesson"] == "load_balancing");
  std::remove(path.c_str());
}

TEST_CASE("bad plugin files are reported as warnings and do not stop the good ones") {
  std::string out;
  REQUIRE(run_cli("--plugins " HLDLAB_TEST_BAD_PLUGIN_DIR " --plugins " HLDLAB_TEST_BAD_PLUGIN_DIR "/good list", out) == 0);
  REQUIRE_THAT(out, Catch::Contains("passthrough") && Catch::Contains("wrong_abi.so") &&
                        Catch::Contains("garbage.so") && Catch::Contains("not_a_plugin.so"));
}
