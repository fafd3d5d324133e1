// The contract every lesson plugin must honour, checked over every discovered plugin.
#include <catch2/catch.hpp>

#include "hldlab/runtime/params.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::registry;

namespace {

/// Arguments that satisfy a declaration: defaults, or the lowest allowed value when required.
Map minimal_args(const std::vector<ParamSpec>& specs) {
  Map args;
  for (const auto& p : specs) {
    if (!p.default_value.is_nil()) continue;
    switch (p.type) {
      case ParamType::integer:
      case ParamType::real:
        args[p.name] = std::max(0.0, p.min);
        break;
      case ParamType::duration:
        args[p.name] = std::max(0.001, p.min);
        break;
      case ParamType::boolean:
        args[p.name] = false;
        break;
      case ParamType::string:
        args[p.name] = p.choices.empty() ? "x" : p.choices[0];
        break;
      case ParamType::number_list:
        args[p.name] = List{};
        break;
    }
  }
  return args;
}

ExperimentResult run_lesson(const LessonInfo& info, std::uint64_t seed, bool with_faults) {
  ExperimentConfig config;
  config.seed = seed;
  config.duration = seconds(4);
  config.drain = seconds(600);
  Experiment e(config);
  Workload w;
  w.arrivals.rps = 200;
  w.keys = KeyDistribution::zipf(1000, 1.0);
  w.service = Distribution::exponential(static_cast<double>(milliseconds(5)));
  w.write_share = 0.1;
  e.set_workload(w);
  for (const auto& v : info.variants) {
    SystemSlot& slot = e.add(registry(), info.name, v.name);
    if (!with_faults) continue;
    Time at = seconds(1);
    for (const auto& f : info.faults) {
      const Map args = minimal_args(f.params);
      e.at(at, [&slot, name = f.name, args] { slot.inject(name, args); });
      at += milliseconds(100);
    }
  }
  return e.run();
}

}  // namespace

TEST_CASE("every lesson declares a title, problem, fix, a naive variant and a fix variant") {
  REQUIRE_FALSE(registry().names().empty());
  for (const auto& name : registry().names()) {
    const LessonInfo& info = registry().get(name).lesson->info();
    INFO(name);
    CHECK_FALSE(info.title.empty());
    CHECK_FALSE(info.problem.empty());
    CHECK_FALSE(info.fix.empty());
    CHECK(std::any_of(info.variants.begin(), info.variants.end(), [](auto& v) { return v.naive; }));
    CHECK(
        std::any_of(info.variants.begin(), info.variants.end(), [](auto& v) { return !v.naive; }));
    for (const auto& p : info.params) CHECK_FALSE(p.doc.empty());
  }
}

TEST_CASE("every variant of every lesson serves traffic and finishes it without failing") {
  for (const auto& name : registry().names()) {
    const auto r = run_lesson(registry().get(name).lesson->info(), 1, false);
    for (const auto& s : r.systems) {
      INFO(name << "/" << s.variant << ": " << s.error);
      CHECK(s.error.empty());
      CHECK(s.requests > 600);
      CHECK(s.completed == s.requests);
    }
  }
}

TEST_CASE("every declared fault of every lesson can be injected without breaking the system") {
  for (const auto& name : registry().names()) {
    const LessonInfo& info = registry().get(name).lesson->info();
    const auto r = run_lesson(info, 1, true);
    for (const auto& s : r.systems) {
      INFO(name << "/" << s.variant << ": " << s.error);
      CHECK(s.error.empty());
      CHECK(s.faults.size() == info.faults.size());
    }
  }
}

TEST_CASE("every lesson gives identical results for the same seed") {
  for (const auto& name : registry().names()) {
    const LessonInfo& info = registry().get(name).lesson->info();
    INFO(name);
    CHECK(to_json(run_lesson(info, 5, true)).dump() == to_json(run_lesson(info, 5, true)).dump());
  }
}
