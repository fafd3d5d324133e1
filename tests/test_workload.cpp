#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "hldlab/runtime/workload_spec.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

TEST_CASE("zipf keys follow the theoretical rank probabilities") {
  const std::uint64_t n = 1000;
  const double s = 1.0;
  const auto keys = KeyDistribution::zipf(n, s);
  Rng rng(3);
  std::vector<int> counts(n);
  const int samples = 1'000'000;
  for (int i = 0; i < samples; ++i) counts[keys.sample(rng)]++;
  double norm = 0;
  for (std::uint64_t k = 1; k <= n; ++k) norm += std::pow(k, -s);
  for (std::uint64_t k : {1, 2, 3, 10, 100}) {
    const double expected = samples * std::pow(k, -s) / norm;
    INFO("rank " << k << " expected " << expected << " got " << counts[k - 1]);
    REQUIRE(std::abs(counts[k - 1] - expected) < 5 * std::sqrt(expected));
  }
}

TEST_CASE("zipf with s = 0.8 and s = 1.2 also matches theory at rank 1") {
  for (double s : {0.8, 1.2}) {
    const auto keys = KeyDistribution::zipf(10000, s);
    Rng rng(11);
    int top = 0;
    const int samples = 500000;
    for (int i = 0; i < samples; ++i) top += keys.sample(rng) == 0;
    double norm = 0;
    for (int k = 1; k <= 10000; ++k) norm += std::pow(k, -s);
    const double expected = samples / norm;
    REQUIRE(std::abs(top - expected) < 5 * std::sqrt(expected));
  }
}

TEST_CASE("hotspot keys send the configured share of traffic to the hot keys") {
  const auto keys = KeyDistribution::hotspot(10000, 0.01, 0.9);
  Rng rng(5);
  int hot = 0;
  for (int i = 0; i < 100000; ++i) hot += keys.sample(rng) < 100;
  REQUIRE(hot > 89000);
  REQUIRE(hot < 91000);
}

TEST_CASE("a lognormal given by median and p99 reproduces both") {
  const auto d = Distribution::lognormal(20e6, 400e6);
  Rng rng(9);
  std::vector<double> v;
  for (int i = 0; i < 200000; ++i) v.push_back(d.sample(rng));
  std::sort(v.begin(), v.end());
  REQUIRE(v[100000] == Approx(20e6).epsilon(0.02));
  REQUIRE(v[198000] == Approx(400e6).epsilon(0.05));
}

TEST_CASE("pareto and exponential samples have the analytical mean") {
  Rng rng(2);
  for (const auto& d : {Distribution::pareto(1e6, 3.0), Distribution::exponential(5e6),
                        Distribution::bimodal(1e6, 100e6, 0.1), Distribution::uniform(1, 3)}) {
    double sum = 0;
    const int n = 400000;
    for (int i = 0; i < n; ++i) sum += d.sample(rng);
    INFO(d.describe());
    REQUIRE(sum / n == Approx(d.mean()).epsilon(0.02));
  }
}

namespace {
ExperimentResult run_passthrough(const Workload& w, Time duration,
                                 std::vector<std::string> variants, std::uint64_t seed = 1) {
  Experiment e({.seed = seed, .duration = duration});
  e.set_workload(w);
  for (const auto& v : variants) e.add(hldlab::testing::test_plugins(), "passthrough", v);
  return e.run();
}
}  // namespace

TEST_CASE("constant arrivals deliver exactly rps times duration requests") {
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 1000;
  const auto r = run_passthrough(w, seconds(10), {"instant"});
  // arrivals at 1 ms, 2 ms, ... 9999 ms: the one at exactly 10 s is after the end
  REQUIRE(row(r, "instant").requests == 9999);
}

TEST_CASE("poisson arrivals average the configured rate") {
  Workload w;
  w.arrivals.rps = 5000;
  const auto r = run_passthrough(w, seconds(20), {"instant"});
  const double expected = 100000;
  REQUIRE(std::abs(row(r, "instant").requests - expected) < 4 * std::sqrt(expected));
}

TEST_CASE("a ramp and a spike change the arrival rate where they say") {
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 100;
  w.arrivals.spikes.push_back({seconds(5), seconds(6), 10000});
  const auto r = run_passthrough(w, seconds(10), {"instant"});
  // 9 s at 100 rps plus 1 s at 10000 rps
  REQUIRE(std::abs(row(r, "instant").requests - (900 + 10000)) <= 2);
  Arrivals ramp;
  ramp.rps = 0;
  ramp.ramp_to_rps = 1000;
  ramp.ramp_start = seconds(0);
  ramp.ramp_end = seconds(10);
  REQUIRE(ramp.rate_at(seconds(5)) == Approx(500));
  REQUIRE(ramp.rate_at(seconds(20)) == Approx(1000));
}

TEST_CASE("every system of an experiment receives the identical request stream") {
  Workload w;
  w.arrivals.rps = 2000;
  w.keys = KeyDistribution::zipf(1000, 1.0);
  const auto r = run_passthrough(w, seconds(5), {"instant", "delayed"});
  REQUIRE(row(r, "instant").requests == row(r, "delayed").requests);
  // The instant variant answers hit for odd keys: the same stream gives the same split.
  const auto again = run_passthrough(w, seconds(5), {"delayed", "instant"});
  REQUIRE(row(again, "instant").count(Outcome::hit) == row(r, "instant").count(Outcome::hit));
  REQUIRE(row(again, "instant").requests == row(r, "instant").requests);
}

TEST_CASE("closed-loop clients wait for each answer before sending the next request") {
  Workload w;
  w.arrivals.kind = Arrivals::Kind::closed;
  w.arrivals.clients = 10;
  w.arrivals.think = Distribution::constant(0);
  const auto r = run_passthrough(w, seconds(1), {"delayed"});
  // each client: a request at 0, 1, ..., 999 ms (the delayed variant answers after 1 ms)
  REQUIRE(row(r, "delayed").requests == 10 * 1000);
  REQUIRE(row(r, "delayed").p50 == Approx(0.001).epsilon(0.01));
}

TEST_CASE("the workload parser names the wrong field") {
  auto parse = [](Map m) { return parse_workload(Value(std::move(m))); };
  REQUIRE_THROWS_WITH(parse({}), Catch::Contains("arrivals is required"));
  REQUIRE_THROWS_WITH(parse({{"arrivals", Map{{"kind", "poisson"}, {"rsp", 10}}}}),
                      "arrivals.rps is required (is 'rsp' a misspelling of 'rps'?)");
  REQUIRE_THROWS_WITH(parse({{"arrivals", Map{{"kind", "poisson"}, {"rps", 10}, {"rmap", Map{}}}}}),
                      "arrivals: unknown field 'rmap' (did you mean 'ramp'?)");
  REQUIRE_THROWS_WITH(parse({{"arrivals", Map{{"kind", "posson"}, {"rps", 10}}}}),
                      Catch::Contains("did you mean 'poisson'"));
  REQUIRE_THROWS_WITH(parse({{"arrivals", Map{{"kind", "poisson"}, {"rps", -5}}}}),
                      Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(
      parse({{"arrivals", Map{{"kind", "poisson"}, {"rps", 10}}}, {"service", "20 parsecs"}}),
      Catch::Contains("unknown unit"));
  REQUIRE_THROWS_WITH(parse({{"arrivals", Map{{"kind", "poisson"}, {"rps", 10}}},
                             {"keys", Map{{"kind", "zipf"}, {"n", 100}}}}),
                      Catch::Contains("keys.s is required"));
  const Workload ok =
      parse({{"arrivals", Map{{"kind", "poisson"}, {"rps", 10}}},
             {"service", Map{{"kind", "lognormal"}, {"median", "20ms"}, {"p99", "400ms"}}}});
  REQUIRE(ok.service.kind == Distribution::Kind::lognormal);
}

TEST_CASE("a workload that would generate too many requests is refused with a clear message") {
  Experiment e({.duration = seconds(3600)});
  Workload w;
  w.arrivals.rps = 1e9;
  REQUIRE_THROWS_WITH(e.set_workload(w), Catch::Contains("more than the limit"));
}
