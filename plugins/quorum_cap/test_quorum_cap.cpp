#include <catch2/catch.hpp>
#include <cstdlib>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::registry;
using hldlab::testing::row;

namespace {

std::int64_t figure(const SystemResult& s, const std::string& name) {
  return s.figures.at(name).as_int();
}

Workload traffic(std::uint32_t clients, std::uint64_t keys = 100) {
  Workload w;
  w.arrivals.rps = 1000;
  w.keys = KeyDistribution::uniform(keys);
  w.clients = clients;
  w.write_share = 0.3;
  w.service = Distribution::constant(static_cast<double>(milliseconds(1)));
  return w;
}

/// Replica 0 cut off from the others during [10 s, 20 s).
void partition_window(Experiment& e, SystemSlot& s) {
  e.at(seconds(10), [&s] { s.inject("partition", {{"nodes", List{0}}}); });
  e.at(seconds(20), [&s] { s.inject("heal", {}); });
}

}  // namespace

TEST_CASE("quorums with R + W > N never return a stale read, R + W <= N do") {
  for (std::uint64_t seed : {1, 2}) {
    ExperimentConfig config;
    config.seed = seed;
    config.duration = seconds(30);
    Experiment e(config);
    e.set_workload(traffic(300));
    for (int r = 1; r <= 3; ++r)
      for (int w = 1; w <= 3; ++w)
        e.add(registry(), "quorum_cap", "cp", {{"read_quorum", r}, {"write_quorum", w}},
              "r" + std::to_string(r) + "w" + std::to_string(w));
    const auto result = e.run();
    for (int r = 1; r <= 3; ++r)
      for (int w = 1; w <= 3; ++w) {
        const auto& s = row(result, "r" + std::to_string(r) + "w" + std::to_string(w));
        INFO("seed " << seed << " R=" << r << " W=" << w);
        if (r + w > 3)
          CHECK(figure(s, "stale_reads") == 0);
        else
          CHECK(figure(s, "stale_reads") > 0);
        CHECK(s.count(Outcome::ok) == s.requests);  // no fault: everything answered
      }
    // The weakest quorums are the stalest.
    CHECK(figure(row(result, "r1w1"), "stale_reads") > figure(row(result, "r1w2"), "stale_reads"));
  }
}

TEST_CASE("CP rejects exactly the operations the isolated replica gets during the partition") {
  ExperimentConfig config;
  config.duration = seconds(30);
  Experiment e(config);
  Workload w = traffic(1);  // one client: every operation is coordinated by replica 0
  w.arrivals.kind = Arrivals::Kind::constant;
  e.set_workload(w);
  for (const char* v : {"ap", "cp"}) partition_window(e, e.add(registry(), "quorum_cap", v));
  const auto r = e.run();
  // One operation per ms; those arriving in [10 s, 20 s) find no quorum (1 of 3 replicas).
  CHECK(row(r, "cp").count(Outcome::rejected) == 10000);
  CHECK(row(r, "cp").metrics.at("rejected_no_quorum").as_double() == 10000);
  CHECK(row(r, "ap").count(Outcome::rejected) == 0);
  // One side only takes writes: AP diverges from the cut-off replicas but has no conflict.
  CHECK(figure(row(r, "ap"), "conflict_keys") == 0);
  CHECK(figure(row(r, "ap"), "divergent_at_heal") > 0);
  CHECK(figure(row(r, "ap"), "divergent_1s_after_heal") == 0);
}

TEST_CASE("under a partition AP serves stale reads and loses writes at heal, CP stays consistent") {
  for (std::uint64_t seed : {1, 2}) {
    ExperimentConfig config;
    config.seed = seed;
    config.duration = seconds(30);
    Experiment e(config);
    e.set_workload(traffic(300, 1000));
    for (const char* v : {"ap", "cp"}) partition_window(e, e.add(registry(), "quorum_cap", v));
    const auto r = e.run();
    const auto& ap = row(r, "ap");
    const auto& cp = row(r, "cp");
    INFO("seed " << seed);
    CHECK(figure(ap, "stale_reads") > 100);
    // Theory: 3000 writes in the 10 s window over 1000 uniform keys, a third of them on the
    // isolated side. A key is written there with probability 1 - e^-1, on the majority side
    // with 1 - e^-2: both (a conflict) 0.547, either (divergent at heal) 1 - e^-3 = 0.950.
    // Bounds: about 5 binomial standard deviations over the 1000 keys.
    CHECK(std::abs(figure(ap, "conflict_keys") - 547) < 80);
    CHECK(std::abs(figure(ap, "divergent_at_heal") - 950) < 35);
    // CP: only the majority writes; the isolated replica misses them (1 - e^-2 = 0.865).
    CHECK(std::abs(figure(cp, "divergent_at_heal") - 865) < 55);
    CHECK(figure(ap, "lww_dropped") > figure(ap, "conflict_keys"));
    CHECK(figure(ap, "divergent_1s_after_heal") == 0);  // reconciled at heal
    CHECK(ap.count(Outcome::rejected) == 0);
    CHECK(figure(cp, "stale_reads") == 0);
    CHECK(figure(cp, "conflict_keys") == 0);
    CHECK(figure(cp, "lww_dropped") == 0);
    CHECK(figure(cp, "divergent_1s_after_heal") == 0);
    // Clients 0, 3, 6, ...: a third of the ~10000 operations in the window, within 5 sigma.
    CHECK(cp.count(Outcome::rejected) > 3333 - 5 * 58);
    CHECK(cp.count(Outcome::rejected) < 3333 + 5 * 58);
  }
}

TEST_CASE("the quorum_cap script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("quorum_cap.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 7);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("quorums larger than the replica set and unknown replicas are refused") {
  ExperimentConfig config;
  Experiment e(config);
  REQUIRE_THROWS_WITH(e.add(registry(), "quorum_cap", "cp", {{"write_quorum", 4}}),
                      Catch::Contains("must be at most replicas"));
  SystemSlot& s = e.add(registry(), "quorum_cap", "ap");
  REQUIRE_THROWS_WITH(s.inject("partition", {{"nodes", List{5}}}),
                      Catch::Contains("node 5 does not exist"));
}
