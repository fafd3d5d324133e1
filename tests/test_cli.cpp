#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

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
  for (const char* part :
       {"Problem:", "Fix:", "least_connections", "[naive]", "backends (integer, default 10)",
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
  REQUIRE(run_cli("--plugins " HLDLAB_TEST_BAD_PLUGIN_DIR " --plugins " HLDLAB_TEST_BAD_PLUGIN_DIR
                  "/good list",
                  out) == 0);
  REQUIRE_THAT(out, Catch::Contains("passthrough") && Catch::Contains("wrong_abi.so") &&
                        Catch::Contains("garbage.so") && Catch::Contains("not_a_plugin.so"));
}

TEST_CASE(
    "hldlab new-lesson scaffolds a lesson, in the tree or standalone, and never overwrites one") {
  const std::string root = "new_lesson_test_root";
  std::string out;
  REQUIRE(run_cli("new-lesson x --root /nonexistent", out) == 2);
  REQUIRE_THAT(out, Catch::Contains("has no plugins/ folder"));
  std::system(
      ("rm -rf " + root + " && mkdir -p " + root + "/plugins " + root + "/scripts").c_str());
  REQUIRE(run_cli("new-lesson queue_demo --root " + root, out) == 0);
  for (const char* f : {"/plugins/queue_demo/CMakeLists.txt", "/plugins/queue_demo/lesson.cpp",
                        "/plugins/queue_demo/test_queue_demo.cpp", "/plugins/queue_demo/README.md",
                        "/scripts/queue_demo.lua"})
    REQUIRE(std::ifstream(root + f).good());
  std::ifstream lesson(root + "/plugins/queue_demo/lesson.cpp");
  const std::string text((std::istreambuf_iterator<char>(lesson)),
                         std::istreambuf_iterator<char>());
  REQUIRE_THAT(
      text, Catch::Contains("HLDLAB_LESSON(info, build)") && Catch::Contains("\"queue_demo\""));
  REQUIRE(run_cli("new-lesson queue_demo --root " + root, out) == 2);
  REQUIRE_THAT(out, Catch::Contains("already exists"));
  REQUIRE(run_cli("new-lesson Bad-Name --root " + root, out) == 2);
  REQUIRE_THAT(out, Catch::Contains("must start with a lowercase letter"));

  // Standalone: a project built against the installed SDK (built and run by the install test).
  REQUIRE(run_cli("new-lesson queue_demo --standalone " + root + "/alone", out) == 0);
  for (const char* f :
       {"/alone/CMakeLists.txt", "/alone/lesson.cpp", "/alone/queue_demo.lua", "/alone/README.md"})
    REQUIRE(std::ifstream(root + f).good());
  REQUIRE(run_cli("new-lesson queue_demo --standalone " + root + "/alone", out) == 2);
  REQUIRE_THAT(out, Catch::Contains("already exists"));
  REQUIRE(run_cli("new-lesson queue_demo --standalone a --root b", out) == 2);
  std::system(("rm -rf " + root).c_str());
}
