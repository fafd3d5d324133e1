#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "hldlab_test.hpp"

using namespace hldlab::testing;

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
  REQUIRE_THAT(out, Catch::Contains("no script '/nonexistent/script.lua'"));
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

namespace {
const std::string kTiny = std::string(HLDLAB_SOURCE_DIR) + "/tests/scripts/tiny.lua";

/// Run the CLI and expect exit code 2 with `message` in one line of its output.
void expect_bad_input(const std::string& args, const std::string& message) {
  std::string out;
  INFO(args << "\n" << out);
  CHECK(run_cli(args, out) == 2);
  CHECK_THAT(out, Catch::Contains(message));
}
}  // namespace

TEST_CASE("numeric flags out of range, NaN or empty are refused instead of saturating") {
  expect_bad_input("run " + kTiny + " --seed 99999999999999999999", "--seed must be a whole number");
  expect_bad_input("run " + kTiny + " --seed -1", "--seed must be a whole number");
  expect_bad_input("run " + kTiny + " --max-instructions 99999999999999999999",
                   "--max-instructions must be a whole number");
  expect_bad_input("run " + kTiny + " --pace nan", "--pace must be a number");
  expect_bad_input("run " + kTiny + " --jobs 0", "--jobs must be a number from 1");
  expect_bad_input("run " + kTiny + " --timeout soon", "is not a duration");
  expect_bad_input("run " + kTiny + " --memory lots", "--memory must be a number");
}

TEST_CASE("bad metrics addresses and a missing scripts directory are refused") {
  expect_bad_input("run " + kTiny + " --metrics ''", "--metrics needs HOST:PORT");
  std::string out;  // IPv6 serves where the machine has it, else one clear line
  const int code = run_cli("run " + kTiny + " --metrics '[::1]:0'", out);
  if (code == 0)
    CHECK_THAT(out, Catch::Contains("serving metrics on http://[::1]:"));
  else
    CHECK((code == 3 && out.find("cannot serve metrics on [::1]:0") != std::string::npos));
  expect_bad_input("tour --scripts /nonexistent", "no directory /nonexistent");
}

TEST_CASE("a plugin given as a file is loaded; truncated plugin files are refused, not mapped") {
  std::string out;
  REQUIRE(run_cli("--plugins " HLDLAB_TEST_PLUGIN_DIR "/load_balancing.so list", out) == 0);
  CHECK_THAT(out, Catch::Contains("load_balancing"));
  const std::string dir = "truncated_plugins";
  std::filesystem::create_directories(dir);
  std::ifstream whole(HLDLAB_TEST_PLUGIN_DIR "/load_balancing.so", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(whole)), {});
  for (std::size_t size : {1ul, 1000ul, 20000ul, 100000ul}) {
    std::ofstream part(dir + "/cut_" + std::to_string(size) + ".so", std::ios::binary);
    part.write(bytes.data(), static_cast<std::streamsize>(std::min(size, bytes.size())));
  }
  for (const char* command : {"list", "info load_balancing", "run " HLDLAB_SOURCE_DIR "/tests/scripts/tiny.lua"}) {
    INFO(command);
    const int code = run_cli("--plugins " + dir + " " + command, out);
    CHECK(code < 128);  // no signal (SIGBUS)
    CHECK_THAT(out, Catch::Contains("cut_1000.so: cannot be loaded: truncated"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("global flags work after the subcommand, and --version, version and help answer") {
  std::string out;
  REQUIRE(run_cli("run " + kTiny + " --log-level info", out) == 0);
  REQUIRE(run_cli("--version", out) == 0);
  CHECK_THAT(out, Catch::StartsWith("hldlab "));
  REQUIRE(run_cli("version", out) == 0);
  REQUIRE(run_cli("help run", out) == 0);
  CHECK_THAT(out, Catch::Contains("--timeout"));
  REQUIRE(run_cli("help frobnicate", out) == 2);
}

TEST_CASE("with the JSON on stdout (--json -) the tables go to stderr") {
  std::string out;
  const std::string command = std::string(HLDLAB_BINARY) + " --plugins " HLDLAB_TEST_PLUGIN_DIR
                              " run " + kTiny + " --json - 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  REQUIRE(pclose(pipe) == 0);
  const auto json = nlohmann::json::parse(out);  // nothing but JSON on stdout
  CHECK(json["exit_code"] == 0);
}

TEST_CASE("a script resolves from the installed scripts when not found where it is named") {
  std::string out;
  REQUIRE(run_cli("run tiny_does_not_exist.lua", out) == 2);
  REQUIRE(run_cli("run load_balancing.lua --seed 42", out) == 0);  // scripts/ of the source tree
  CHECK_THAT(out, Catch::Contains("== load_balancing"));
}

TEST_CASE("the wall-clock limit stops a run with exit 2, even one stuck in a Lua pattern") {
  std::string out;
  const std::string stuck = "stuck_pattern.lua";
  std::ofstream(stuck) << "print(string.find(('a'):rep(30) .. 'b', ('a?'):rep(30) .. ('a'):rep(30)))\n";
  CHECK(run_cli("run " + stuck + " --timeout 1s", out) == 2);
  CHECK_THAT(out, Catch::Contains("--timeout"));
  // Paced, the first experiment (300 s of traffic) is surely running when the limit hits: a
  // limit shorter than loading the plugins would stop the run before any experiment.
  CHECK(run_cli("run load_balancing.lua --pace 1 --timeout 2s --json timeout.json", out) == 2);
  CHECK_THAT(out, Catch::Contains("exceeded its time limit"));
  std::ifstream in("timeout.json");
  const auto json = nlohmann::json::parse(in);
  CHECK(json["timed_out"] == true);
  CHECK(json["experiments"][0]["interrupted"] == true);
  std::remove(stuck.c_str());
  std::remove("timeout.json");
}

TEST_CASE("SIGINT stops a run, prints and writes the results so far, exit 130") {
  const std::string command = std::string(HLDLAB_BINARY) + " --plugins " HLDLAB_TEST_PLUGIN_DIR
                              " run load_balancing.lua --pace 100 --json sigint.json "
                              ">sigint.out 2>&1 & pid=$!; sleep 1; kill -INT $pid; wait $pid";
  const int status = std::system(("bash -c '" + command + "'").c_str());
  CHECK(WEXITSTATUS(status) == 130);
  std::ifstream in("sigint.json");
  const auto json = nlohmann::json::parse(in);
  CHECK(json["interrupted"] == true);
  CHECK(json["exit_code"] == 130);
  CHECK(json["experiments"][0]["interrupted"] == true);
  std::ifstream printed("sigint.out");
  const std::string text((std::istreambuf_iterator<char>(printed)), {});
  CHECK_THAT(text, Catch::Contains("INTERRUPTED") && Catch::Contains("round_robin"));
  std::remove("sigint.json");
  std::remove("sigint.out");
}

TEST_CASE("a closed pipe on stdout does not stop the JSON file from being written") {
  const std::string command = std::string(HLDLAB_BINARY) + " --plugins " HLDLAB_TEST_PLUGIN_DIR
                              " run " + kTiny + " --json pipe.json | head -1 >/dev/null";
  std::system(("bash -c '" + command + "'").c_str());
  std::ifstream in("pipe.json");
  REQUIRE(in.good());
  CHECK(nlohmann::json::parse(in)["exit_code"] == 0);
  std::remove("pipe.json");
}
