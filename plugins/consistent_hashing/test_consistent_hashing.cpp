#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab/placement.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"mod_n",      "ring",   "ring_vnodes", "jump",
                                 "rendezvous", "maglev", "bounded_load"};
constexpr double kSample = 200000;  // sample_keys by default

/// Keys of the sample owned by `node` according to the "nodes" operation.
std::int64_t keys_of(SystemSlot& s, std::int64_t node) {
  const Value nodes = s.call("nodes", {});
  for (const Value& n : nodes.as_list())
    if (n["id"].as_int() == node) return n["keys"].as_int();
  FAIL("no node " << node);
  return -1;
}

Map figures_of(const std::string& variant, const Map& params, std::uint64_t seed = 1) {
  return run_experiment(poisson_workload(100), seconds(1),
                        {{"consistent_hashing", variant, params}}, seed)
      .systems[0]
      .figures;
}

/// Standard deviation of the fraction of the sample that moves when a share p of the keys
/// must: jump, rendezvous and mod N decide each key on its own (Binomial(K, p) / K); a ring
/// node's v arcs among m points hold a Beta(v, m - v) share, of variance p (1 - p) / (m + 1).
double sd_moved(double p, double ring_points = 0) {
  return std::sqrt(p * (1 - p) * (1 / kSample + (ring_points > 0 ? 1 / (ring_points + 1) : 0)));
}

}  // namespace

TEST_CASE("going from 10 to 11 nodes moves 10/11 of the keys with mod N and 1/11 otherwise") {
  const double p = 1.0 / 11;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {  // 20 placements
    Experiment e({.seed = seed});
    for (const char* v : kVariants) {
      SystemSlot& s = e.add(registry(), "consistent_hashing", v);
      const Value r = s.call("add_node", {});
      const double moved = r["moved"].as_double(), other = r["moved_other"].as_double();
      const std::int64_t to_new_node = keys_of(s, r["node"].as_int());
      INFO("seed " << seed << ", " << v << ": moved " << moved << ", between old nodes " << other);
      REQUIRE(r["nodes"].as_int() == 11);
      const std::string name = v;
      if (name == "mod_n") {
        CHECK(std::abs(moved - (1 - p)) < 5 * sd_moved(p));  // 90.9%
      } else if (name == "bounded_load") {
        // Keys move to the new node, and between old nodes when capacities (which shrink
        // with n) push them along the ring; no node ends above its capacity.
        CHECK(r["moved_keys"].as_int() >= to_new_node);
        CHECK(r["key_max_mean"].as_double() <= std::ceil(1.25 * kSample / 11) / (kSample / 11));
      } else if (name == "maglev") {
        // The new node claims M/11 table entries (within one); a few entries change hands
        // between old nodes: Maglev is nearly, not perfectly, minimally disruptive.
        CHECK(std::abs(moved - other - p) < 5 * sd_moved(p));
        CHECK(other < 0.01);
      } else {
        // Every moved key moved to the new node.
        CHECK(other == 0);
        CHECK(r["moved_keys"].as_int() == to_new_node);
        if (name == "ring_vnodes") CHECK(std::abs(moved - p) < 5 * sd_moved(p, 11 * 160));
        if (name == "jump" || name == "rendezvous") CHECK(std::abs(moved - p) < 5 * sd_moved(p));
        // (ring: one point per node, the new node takes one random arc, Beta(1, 10).)
      }
    }
  }
}

TEST_CASE("with hundreds of virtual nodes the ring's new node takes 1/11 of the keys") {
  // The new node owns v of the 11 v arcs: a Beta(v, 10 v) share, standard deviation
  // 0.9 points at 100 vnodes, 0.3 at 1000.
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Experiment e({.seed = seed});
    for (int vnodes : {100, 160, 400, 1000}) {
      SystemSlot& s = e.add(registry(), "consistent_hashing", "ring_vnodes", {{"vnodes", vnodes}},
                            "v" + std::to_string(vnodes));
      const double moved = s.call("add_node", {})["moved"].as_double();
      INFO("seed " << seed << ", " << vnodes << " vnodes: moved " << moved);
      CHECK(std::abs(moved - 1.0 / 11) < 5 * sd_moved(1.0 / 11, 11 * vnodes));
    }
  }
}

TEST_CASE("the seed places the nodes: another seed, another placement; the same seed, the same") {
  const Map a = figures_of("ring", {}, 1), b = figures_of("ring", {}, 2);
  CHECK(a.at("key_cv").as_double() != b.at("key_cv").as_double());
  CHECK(figures_of("ring", {}, 1).at("key_cv") == a.at("key_cv"));
  // Every variant of one seed draws the same salts: `ring` is `ring_vnodes` with one point.
  CHECK(figures_of("ring_vnodes", {{"vnodes", 1}}, 1).at("key_cv") == a.at("key_cv"));
}

TEST_CASE("removing or killing a node moves only that node's keys, except with mod N") {
  Experiment e;
  for (const char* v : {"ring", "ring_vnodes", "jump", "rendezvous", "mod_n"}) {
    SystemSlot& s = e.add(registry(), "consistent_hashing", v, {}, std::string(v) + "_remove");
    const std::int64_t owned = keys_of(s, 3);
    const Value r = s.call("remove_node", {{"node", 3}});
    INFO(v << ": node 3 owned " << owned << ", moved " << r["moved_keys"].as_int());
    REQUIRE(r["nodes"].as_int() == 9);
    if (std::string(v) == "mod_n") {
      // A key stays only if its index among 10 and among 9 names the same node: 9 of the 90
      // residues mod 90.
      CHECK(std::abs(r["moved"].as_double() - 0.9) < 5 * sd_moved(0.9));
    } else {
      CHECK(r["moved_keys"].as_int() == owned);
      CHECK(r["moved_other"].as_double() == 0);
    }
    // A second change through the kill fault behaves the same (jump: a middle bucket dies).
    SystemSlot& k = e.add(registry(), "consistent_hashing", v, {}, std::string(v) + "_kill");
    const std::int64_t owned5 = keys_of(k, 5);
    k.inject("kill", {{"node", 5}});
    const Value after = k.call("remove_node", {});  // then the last node leaves gracefully
    const Value nodes = k.call("nodes", {});
    CHECK_FALSE(nodes.as_list()[5]["member"].as_bool());
    CHECK_FALSE(nodes.as_list()[9]["member"].as_bool());
    if (std::string(v) != "mod_n") {
      CHECK(after["moved_other"].as_double() == 0);
      CHECK(owned5 > 0);
    }
  }
}

TEST_CASE("the ring's load spread falls as virtual nodes grow: E[CV^2] = (n - 1) / (n v + 1)") {
  // n nodes of v points: a node's share is Beta(v, (n - 1) v), so n^2 Var(share) =
  // (n - 1) / (n v + 1); sampling K keys adds (n - 1 - that) / K. Over 40 placements the mean
  // CV^2 is within 5 standard errors (the CV^2 of one placement has a relative standard
  // deviation of at most 0.53, measured on 20 000 simulated placements per v).
  const double n = 10, placements = 40;
  double previous = 1e9;
  for (int vnodes : {1, 10, 100, 1000}) {
    double sum = 0;
    for (std::uint64_t seed = 1; seed <= placements; ++seed) {
      const double cv =
          figures_of("ring_vnodes", {{"vnodes", vnodes}}, seed).at("key_cv").as_double();
      sum += cv * cv;
    }
    const double spread = (n - 1) / (n * vnodes + 1);
    const double expected = spread + (n - 1 - spread) / kSample;
    const double mean = sum / placements;
    INFO(vnodes << " vnodes: mean CV^2 " << mean << ", theory " << expected);
    CHECK(std::abs(mean - expected) < 5 * 0.53 * expected / std::sqrt(placements));
    CHECK(mean < previous / 5);  // ten times the points: about a tenth of the variance
    previous = mean;
  }
}

TEST_CASE("maglev gives every backend the same number of table entries, within one") {
  Experiment e;
  SystemSlot& s = e.add(registry(), "consistent_hashing", "maglev", {{"maglev_table", 65537}});
  for (int change = 0; change < 3; ++change) {
    std::int64_t least = 1 << 30, most = 0, total = 0;
    const Value nodes = s.call("nodes", {});
    for (const Value& n : nodes.as_list()) {
      if (!n["member"].as_bool()) continue;
      const auto entries = n["table_entries"].as_int();
      least = std::min(least, entries), most = std::max(most, entries), total += entries;
    }
    INFO("change " << change << ": entries from " << least << " to " << most);
    CHECK(total == 65537);
    CHECK(most - least <= 1);             // the round-robin fill
    CHECK(most - least <= 0.01 * 65537);  // the claim: within 1% of the table
    if (change == 0) s.call("add_node", {});
    if (change == 1) s.call("remove_node", {{"node", 2}});
  }
}

TEST_CASE("jump hash only ever moves a key to the new bucket, and spreads keys evenly") {
  std::vector<std::int64_t> count(11, 0);
  std::uint64_t steps = 0;
  for (std::uint64_t k = 0; k < 110000; ++k) {
    const std::uint64_t h = placement::hash_key(k);
    const auto at10 = placement::jump(h, 10, steps), at11 = placement::jump(h, 11, steps);
    REQUIRE((at11 == at10 || at11 == 10));
    ++count[static_cast<std::size_t>(at11)];
  }
  // 10 000 keys expected per bucket; binomial sd ~95.
  for (auto c : count) CHECK(std::abs(c - 10000) < 500);
  // O(ln n) jumps: sum 1/(i) over buckets ~ ln(11) + 0.58 per lookup.
  CHECK(static_cast<double>(steps) / 220000 < 4);
}

TEST_CASE("bounded loads cap the keys per node at (1 + eps) times the average") {
  const Map f = figures_of("bounded_load", {{"load_factor", 0.1}, {"vnodes", 10}});
  const Map ring = figures_of("ring_vnodes", {{"vnodes", 10}});
  INFO("bounded " << f.at("key_max_mean").as_double() << " ring "
                  << ring.at("key_max_mean").as_double());
  CHECK(f.at("key_max_mean").as_double() <= std::ceil(1.1 * kSample / 10) / (kSample / 10));
  // Ten points per node (CV ~ 30%): some node is above the cap on any placement but a
  // vanishing few.
  CHECK(ring.at("key_max_mean").as_double() > 1.1);
}

TEST_CASE("a hot key overloads its node's queue; bounded loads spread it and cut P99") {
  Experiment e({.duration = seconds(60)});
  Workload w;
  w.arrivals.rps = 600;  // 10 nodes of 100 rps each: 60% utilisation on average
  w.keys = KeyDistribution::zipf(100000, 1.1);
  w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
  e.set_workload(w);
  for (const char* v : {"ring_vnodes", "bounded_load", "rendezvous"})
    e.add(registry(), "consistent_hashing", v);
  const auto r = e.run();
  const auto& ring = row(r, "ring_vnodes");
  const auto& bounded = row(r, "bounded_load");
  INFO("ring P99 " << ring.p99 << " req max/mean " << ring.figures.at("req_max_mean").as_double()
                   << "; bounded P99 " << bounded.p99 << " req max/mean "
                   << bounded.figures.at("req_max_mean").as_double());
  CHECK(ring.figures.at("req_max_mean").as_double() > 1.5);
  CHECK(bounded.figures.at("req_max_mean").as_double() < 1.5);
  CHECK(bounded.p99 < ring.p99 / 5);
  CHECK(row(r, "rendezvous").p99 > 5 * bounded.p99);  // every pure hash has the hot node
  CHECK(bounded.completed == bounded.requests);
}

TEST_CASE("one point per node leaves a node with a far bigger arc, which shows in P99") {
  // 10 nodes of one point: the biggest of 10 arcs is below 12% of the circle (1.2x the mean)
  // with probability 5e-7 (the largest spacing of 10 uniform points), so its node is busier
  // than any node of a 1000-point ring, and its queue shows in P99.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    Workload w = poisson_workload(500, 0, 1000000);  // 50% utilisation on average
    w.service = Distribution::exponential(static_cast<double>(milliseconds(10)));
    const auto r = run_experiment(
        w, seconds(60),
        {{"consistent_hashing", "ring"}, {"consistent_hashing", "ring_vnodes", {{"vnodes", 1000}}}},
        seed);
    INFO("seed " << seed << ": ring P99 " << row(r, "ring").p99 << ", ring_vnodes P99 "
                 << row(r, "ring_vnodes").p99);
    CHECK(hldlab::testing::figure(r, "ring", "key_max_mean") > 1.2);
    CHECK(row(r, "ring").p99 > row(r, "ring_vnodes").p99);
  }
}

TEST_CASE("the consistent_hashing script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("consistent_hashing.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("bad placements and bad membership changes are refused") {
  Experiment e;
  REQUIRE_THROWS_WITH(e.add(registry(), "consistent_hashing", "maglev", {{"maglev_table", 65536}}),
                      Catch::Contains("prime"));
  SystemSlot& s = e.add(registry(), "consistent_hashing", "jump", {{"nodes", 1}});
  REQUIRE_THROWS_WITH(s.call("remove_node", {}), Catch::Contains("last node"));
  REQUIRE_THROWS_WITH(s.call("remove_node", {{"node", 7}}),
                      Catch::Contains("node 7 is not a member"));
  REQUIRE(s.call("lookup", {{"key", 123}}).as_int() == 0);
}
