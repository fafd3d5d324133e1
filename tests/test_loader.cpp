#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;

namespace {
const std::string bad_dir = HLDLAB_TEST_BAD_PLUGIN_DIR;

std::string error_for(const PluginRegistry& r, const std::string& file) {
  for (const auto& e : r.errors())
    if (e.find(file) != std::string::npos) return e;
  return "";
}
}  // namespace

TEST_CASE(
    "broken plugins are refused one by one with a message naming the file, and good ones still "
    "load") {
  PluginRegistry r;
  r.load_directory(bad_dir + "/good");
  r.load_directory(bad_dir);
  REQUIRE(r.names() == std::vector<std::string>{"passthrough"});
  REQUIRE(r.errors().size() == 4);
  REQUIRE_THAT(error_for(r, "wrong_abi.so"),
               Catch::Contains("ABI version 999") && Catch::Contains("rebuild"));
  REQUIRE_THAT(error_for(r, "not_a_plugin.so"), Catch::Contains("not an hldlab plugin"));
  REQUIRE_THAT(error_for(r, "garbage.so"), Catch::Contains("cannot be loaded"));
  REQUIRE_THAT(error_for(r, "throwing_factory.so"), Catch::Contains("constructor exploded"));
}

TEST_CASE("a second lesson with the same name is refused as a duplicate") {
  PluginRegistry r;
  REQUIRE(r.load_file(bad_dir + "/good/passthrough.so"));
  REQUIRE_FALSE(r.load_file(bad_dir + "/good/passthrough.so"));
  REQUIRE_THAT(r.errors().at(0), Catch::Contains("duplicate lesson 'passthrough'"));
}

TEST_CASE("a missing plugin directory is reported") {
  PluginRegistry r;
  r.load_directory("/nonexistent/plugins");
  REQUIRE_THAT(r.errors().at(0), Catch::Contains("no such plugin file or directory"));
}

TEST_CASE("an unknown lesson name gets a did-you-mean and the list of lessons") {
  PluginRegistry r;
  r.load_directory(bad_dir + "/good");
  REQUIRE_THROWS_WITH(
      r.get("passthru"),
      "unknown lesson 'passthru' (did you mean 'passthrough'?); known: passthrough");
}

TEST_CASE("the plugin library stays loaded while a system built from it lives") {
  Experiment e({.duration = seconds(1)});
  Workload w;
  w.arrivals.rps = 100;
  e.set_workload(w);
  {
    PluginRegistry r;
    r.load_directory(bad_dir + "/good");
    e.add(r, "passthrough", "delayed");
  }  // the registry, and its reference to the library, is gone
  const auto result = e.run();
  REQUIRE(result.systems.at(0).completed == result.systems.at(0).requests);
  REQUIRE(result.systems.at(0).requests > 50);
}

TEST_CASE(
    "a plugin throwing while handling requests fails only its own system, named lesson/variant") {
  Experiment e({.duration = seconds(2)});
  Workload w;
  w.arrivals.rps = 1000;
  e.set_workload(w);
  e.add(hldlab::testing::test_plugins(), "passthrough", "faulty");
  e.add(hldlab::testing::test_plugins(), "passthrough", "instant");
  const auto r = e.run();
  const auto& faulty = hldlab::testing::row(r, "faulty");
  REQUIRE(faulty.error == "passthrough/faulty: deliberate failure on request 100");
  REQUIRE(faulty.requests == 100);
  const auto& healthy = hldlab::testing::row(r, "instant");
  REQUIRE(healthy.error.empty());
  REQUIRE(healthy.completed == healthy.requests);
  REQUIRE(healthy.requests > 1500);
}

TEST_CASE("lesson metadata with mistakes is refused") {
  LessonInfo info;
  info.name = "Bad Name";
  REQUIRE_THROWS_WITH(check_lesson_info(info), Catch::Contains("lowercase"));
  info.name = "ok";
  REQUIRE_THROWS_WITH(check_lesson_info(info), Catch::Contains("no variants"));
  info.variants = {{"a", true, ""}, {"a", false, ""}};
  REQUIRE_THROWS_WITH(check_lesson_info(info), Catch::Contains("duplicate variant 'a'"));
  info.variants = {{"a", true, ""}};
  info.params = {{"n", ParamType::integer, 0, "", 1, 10}};
  REQUIRE_THROWS_WITH(check_lesson_info(info), Catch::Contains("out of range"));
}
