#include <catch2/catch.hpp>
#include <cmath>
#include <unordered_set>

#include "hldlab_test.hpp"
#include "hll.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// A HyperLogLog of 2^p registers fed `n` distinct ids, hashed with the seed's salt.
hll::HyperLogLog sketch_of(int p, std::uint64_t n, std::uint64_t seed) {
  hll::HyperLogLog h(p);
  hll::Work work;
  const std::uint64_t salt = Rng::hash(seed);
  for (std::uint64_t id = 0; id < n; ++id) h.add_hash(Rng::hash(id ^ salt), work);
  return h;
}

ExperimentResult run_variants(const Workload& w, Time duration, const Map& params,
                              std::uint64_t seed = 1) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : {"exact_set", "sum_of_servers", "hll_raw", "hll"})
    systems.push_back({"hyperloglog", v, params});
  return hldlab::testing::run_experiment(w, duration, systems, seed);
}

/// Visits (writes) at `rps` from visitors uniform over `visitors`; `reads` of them are counts.
Workload visits(double rps, std::uint64_t visitors, double reads = 0) {
  Workload w = hldlab::testing::poisson_workload(rps, 0, visitors);
  w.write_share = 1 - reads;
  return w;
}

}  // namespace

TEST_CASE("a sketch folded to fewer registers is exactly the sketch of that size") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const auto big = sketch_of(16, 300000, seed);
    for (int p = 4; p <= 16; ++p) CHECK(big.folded(p) == sketch_of(p, 300000, seed));
  }
  CHECK_THROWS_WITH(sketch_of(10, 10, 1).folded(12), Catch::Contains("lower precision"));
}

TEST_CASE(
    "the relative standard error over 300 seeds is within 15% of 1.04/sqrt(m), for m = 2^10 to "
    "2^16") {
  // Each seed is another hash function. n = 20 x 2^16 distinct ids go into a sketch of 2^16
  // registers, folded (exactly, see above) to 2^15 ... 2^10: n/m from 20 to 1280, far above
  // the small range. 1.04/sqrt(m) is the limit for large n/m; the error approaches it from
  // below (measured on 4000 seeds at m = 2^10: 0.94 of it at n = 10 m, 0.97 at 20 m, 0.99 at
  // 40 m). The relative error of one estimate is close to normal, so the root mean square of
  // S of them has a relative standard deviation of about 1/sqrt(2 S): 4.1% for S = 300; 15%
  // is 2.9 of those below the limit at 20 m, 3.5 above it.
  const int seeds = 300;
  const std::uint64_t n = 20 << 16;
  double sum_sq[17] = {}, sum[17] = {};
  for (int seed = 1; seed <= seeds; ++seed) {
    const auto big = sketch_of(16, n, static_cast<std::uint64_t>(seed));
    for (int p = 10; p <= 16; ++p) {
      hll::Work work;
      const double error = (big.folded(p).estimate(work) - static_cast<double>(n)) / n;
      sum[p] += error;
      sum_sq[p] += error * error;
    }
  }
  for (int p = 10; p <= 16; ++p) {
    const double rse = std::sqrt(sum_sq[p] / seeds);
    const double theory = hll::HyperLogLog::standard_error(std::size_t{1} << p);
    INFO("m = 2^" << p << ": relative standard error " << rse << ", theory " << theory << ", ratio "
                  << rse / theory << ", mean error " << sum[p] / seeds);
    CHECK(std::abs(rse - theory) < 0.15 * theory);
    CHECK(std::abs(sum[p] / seeds) < 4 * theory / std::sqrt(seeds));  // unbiased
  }
}

TEST_CASE(
    "merging by register-wise max gives exactly the registers of one sketch fed every visit") {
  // Ten servers see overlapping parts of 30 000 visits from 10 000 visitors.
  std::vector<hll::HyperLogLog> servers(10, hll::HyperLogLog(12));
  hll::HyperLogLog everything(12), merged(12);
  hll::Work work;
  Rng rng(5);
  for (int visit = 0; visit < 30000; ++visit) {
    const std::uint64_t h = Rng::hash(rng.below(10000));
    servers[rng.below(10)].add_hash(h, work);
    everything.add_hash(h, work);
  }
  for (const auto& s : servers) merged.merge(s, work);
  CHECK(merged == everything);
  CHECK(merged.estimate(work) == everything.estimate(work));
  // Adding the servers' own counts counts a visitor once per server it reached (here about
  // 10 (1 - 0.9^3) = 2.7 servers).
  double sum = 0;
  for (const auto& s : servers) sum += s.estimate(work);
  CHECK(sum > 2 * merged.estimate(work));
  CHECK_THROWS_WITH(merged.merge(hll::HyperLogLog(10), work), Catch::Contains("different sizes"));
}

TEST_CASE("one visitor sets one register to the position of the first 1 bit after the index") {
  hll::HyperLogLog h(4);  // 16 registers: the first 4 bits of a hash pick one
  hll::Work work;
  h.add_hash((std::uint64_t{5} << 60) | (std::uint64_t{1} << 50), work);  // 9 zeros, then a 1
  CHECK(h.register_value(5) == 10);
  h.add_hash((std::uint64_t{5} << 60) | (std::uint64_t{1} << 58), work);  // a smaller rank
  CHECK(h.register_value(5) == 10);
  h.add_hash(std::uint64_t{3} << 60, work);  // no 1 bit at all: the largest rank, 64 - 4 + 1
  CHECK(h.register_value(3) == 61);
  CHECK(h.zero_registers() == 14);
  CHECK(work.accesses == 3);
  // With no visitor the raw estimate is alpha_m m; the corrected one is m ln(m / m) = 0.
  hll::HyperLogLog empty(14);
  CHECK(empty.raw_estimate(work) == Approx(hll::HyperLogLog::alpha(16384) * 16384));
  CHECK(empty.estimate(work) == 0);
}

TEST_CASE(
    "below 2.5 m the raw estimate is biased upwards; linear counting corrects it within its "
    "standard error") {
  // Linear counting estimates n from the share of empty registers, m ln(m / zeros); its
  // standard error is sqrt(m (e^t - t - 1)) / n at t = n / m (Whang et al. 1990).
  const int p = 12, seeds = 50;
  const double m = 4096;
  for (double t : {0.01, 0.1, 0.5, 1.0, 2.0}) {
    const auto n = static_cast<std::uint64_t>(t * m);
    const double sd = std::sqrt(m * (std::exp(t) - t - 1)) / static_cast<double>(n);
    double raw = 0, corrected = 0;
    for (int seed = 1; seed <= seeds; ++seed) {
      const auto h = sketch_of(p, n, static_cast<std::uint64_t>(seed) + 1000);
      hll::Work work;
      const double e = h.estimate(work);
      raw += (h.raw_estimate(work) - n) / static_cast<double>(n) / seeds;
      corrected += (e - n) / static_cast<double>(n) / seeds;
      INFO("n/m " << t << ", seed " << seed << ": corrected " << e << " for " << n);
      CHECK(std::abs(e - n) / n < 5 * sd);
    }
    INFO("n/m " << t << ": mean raw error " << raw << ", corrected " << corrected << ", sd " << sd);
    CHECK(raw > 0.03);  // the raw estimate overshoots in the whole small range
    CHECK(std::abs(corrected) < 4 * sd / std::sqrt(seeds));
    if (t <= 0.1) CHECK(raw > 5);  // with few visitors, by orders of magnitude
  }
}

TEST_CASE("the exact id set counts every distinct id once, at most 3/4 full, 8 bytes a slot") {
  hll::IdSet set(9);
  std::unordered_set<std::uint64_t> reference;
  hll::Work work;
  Rng rng(2);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t id = rng.below(50000);
    CHECK(set.insert(id, work) == reference.insert(id).second);
  }
  CHECK(set.size() == reference.size());
  for (std::uint64_t id = 0; id < 50000; ++id)
    CHECK(set.contains(id, work) == (reference.count(id) == 1));
  CHECK(set.size() * 4 <= set.capacity() * 3);
  CHECK(set.memory_bytes() == 8 * set.capacity());
}

TEST_CASE(
    "through the lesson: the exact set is exact, the HyperLogLog within 5 standard errors, the "
    "sum over servers double-counts returning visitors") {
  // 40 000 visits from 10 000 visitors: about 4 visits each, on 10 servers each visitor
  // reaches 10 (1 - 0.9^4) = 3.4 servers on average.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const auto r = run_variants(visits(10000, 10000), seconds(4), {}, seed);
    const double visitors = figure(r, "exact_set", "visitors");
    INFO("seed " << seed << ": " << visitors << " visitors");
    CHECK(figure(r, "exact_set", "estimate") == visitors);
    CHECK(figure(r, "hll", "visitors") == visitors);
    const double se = figure(r, "hll", "standard_error");
    CHECK(se == Approx(1.04 / 128));
    CHECK(std::abs(figure(r, "hll", "relative_error")) < 5 * se);
    CHECK(figure(r, "sum_of_servers", "relative_error") > 2);
    CHECK(figure(r, "sum_of_servers", "relative_error") < 2.8);
    // 9 800 visitors is 0.6 m: the raw estimate overshoots, the corrected one does not.
    CHECK(figure(r, "hll_raw", "relative_error") > 0.2);
  }
  // One server: nothing to double-count, the sum is the merge.
  const auto one = run_variants(visits(10000, 10000), seconds(1), {{"servers", 1}});
  CHECK(figure(one, "sum_of_servers", "estimate") == figure(one, "hll", "estimate"));
}

TEST_CASE("memory: the exact set grows with the visitors, the sketches do not") {
  const auto small = run_variants(visits(1000, 1000000000), seconds(1), {});
  const auto big = run_variants(visits(100000, 1000000000), seconds(1), {});
  CHECK(figure(small, "hll", "memory_bytes") == 10 * 16384);
  CHECK(figure(big, "hll", "memory_bytes") == 10 * 16384);
  CHECK(figure(big, "sum_of_servers", "memory_bytes") == 10 * 16384);
  // 100 000 distinct ids need 2^18 slots of 8 bytes (3/4 of 2^17 is 98 304): 2 MiB.
  const double visitors = figure(big, "exact_set", "visitors");
  REQUIRE(visitors > 98304);
  REQUIRE(visitors < 196608);
  CHECK(figure(big, "exact_set", "memory_bytes") == 8 * (1 << 18));
  CHECK(figure(small, "exact_set", "memory_bytes") == 8 * 2048);  // ~1000 ids
  CHECK(figure(big, "exact_set", "bytes_per_visitor") > 10.6);
}

TEST_CASE("a count's time is the registers it scans priced by scan_ns; a visit's, its accesses") {
  // Only scan_ns (0.5 ns) and access_ns (50 ns) cost: a visit to a sketch is one register
  // access (50 ns); a count merges 10 servers' 16 384 registers and estimates from the merged
  // ones: 11 x 16 384 x 0.5 ns = 90.1 us; the sum over servers estimates 10 sketches, 81.9 us.
  const Map costs{{"hash_ns", 0.0}, {"compare_ns", 0.0}};
  const auto r = run_variants(visits(100, 1000000, 0.1), seconds(20), costs);
  const auto& hll = row(r, "hll");
  CHECK(figure(hll, "count_p99") == Approx(11 * 16384 * 0.5e-9).epsilon(0.01));
  CHECK(figure(row(r, "sum_of_servers"), "count_p99") == Approx(10 * 16384 * 0.5e-9).epsilon(0.01));
  CHECK(hll.p50 == Approx(50e-9).epsilon(0.02));  // 90% of the requests are visits
  CHECK(figure(hll, "accesses_per_visit") == 1);
  CHECK(figure(row(r, "exact_set"), "count_p99") == Approx(50e-9).epsilon(0.02));
}

TEST_CASE("after a warm-up the figures count the visits that arrived after it") {
  Experiment e({.duration = seconds(4), .warmup = seconds(2)});
  e.set_workload(hldlab::testing::constant_workload(1000, 0, 1000000));
  e.add(hldlab::testing::registry(), "hyperloglog", "hll");
  const auto r = e.run();
  CHECK(figure(r, "hll", "count_queries") == row(r, "hll").requests);
  CHECK(figure(r, "hll", "count_queries") == Approx(2000).margin(2));
  CHECK(figure(r, "hll", "visits") == 0);
}

TEST_CASE("the hyperloglog script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("hyperloglog.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}
