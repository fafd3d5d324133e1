#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <string>
#include <unordered_set>

#include "bloom.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"db_lookup", "exact_set", "bloom", "bloom_clear_on_delete",
                                 "counting_bloom"};

/// The share of `lookups` names that are not in a filter holding `names` names but that the
/// filter says it might hold. Names 0..names-1 are added, names-1+1.. are looked up.
template <class Filter>
double measured_fpr(Filter& filter, std::uint64_t names, std::uint64_t lookups) {
  bloom::Work work;
  char buffer[16];
  for (std::uint64_t id = 0; id < names; ++id) filter.add(bloom::username(id, buffer), work);
  std::uint64_t positives = 0;
  for (std::uint64_t id = names; id < names + lookups; ++id)
    positives += filter.might_contain(bloom::username(id, buffer), work);
  return static_cast<double>(positives) / static_cast<double>(lookups);
}

/// Requests of `rps` for `duration`, every variant with `params`.
ExperimentResult run_all(const Workload& w, Time duration, const Map& params,
                         std::uint64_t seed = 1) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"bloom_filter", v, params});
  return hldlab::testing::run_experiment(w, duration, systems, seed);
}

Workload checks(double rps, std::uint64_t names, double writes = 0) {
  Workload w = hldlab::testing::poisson_workload(rps, 0, names);
  w.write_share = writes;
  return w;
}

}  // namespace

TEST_CASE("a username is a word then the id in decimal, at most 15 bytes, never shared") {
  char buffer[16];
  const std::string name(bloom::username(4711, buffer));
  CHECK(name.size() > 4);
  CHECK(name.substr(name.size() - 4) == "4711");
  CHECK(name.find_first_of("0123456789") == name.size() - 4);
  std::unordered_set<std::string> seen;
  for (std::uint64_t id = 0; id < 100000; ++id)
    seen.insert(std::string(bloom::username(id, buffer)));
  CHECK(seen.size() == 100000);
  CHECK(bloom::username(9999999999ULL, buffer).size() <= 15);
  CHECK_THROWS_WITH(bloom::username(10000000000000ULL, buffer), Catch::Contains("10^10"));
}

TEST_CASE("the exact name set holds exactly the names inserted and not erased, at most 3/4 full") {
  bloom::NameSet set(7);
  std::set<std::string> reference;
  Rng rng(3);
  bloom::Work work;
  char buffer[16];
  for (int op = 0; op < 200000; ++op) {
    const std::string name(bloom::username(rng.below(20000), buffer));
    if (rng.chance(0.6)) {
      CHECK(set.insert(name, work) == reference.insert(name).second);
    } else {
      CHECK(set.erase(name, work) == (reference.erase(name) == 1));
    }
  }
  REQUIRE(set.size() == reference.size());
  for (std::uint64_t id = 0; id < 20000; ++id) {
    const std::string name(bloom::username(id, buffer));
    CHECK(set.contains(name, work) == (reference.count(name) == 1));
  }
  CHECK((set.capacity() & (set.capacity() - 1)) == 0);
  CHECK(set.size() * 4 <= set.capacity() * 3);
  CHECK(set.memory_bytes() == 16 * set.capacity());
  std::size_t listed = 0;
  set.for_each([&](std::string_view name) { listed += reference.count(std::string(name)); });
  CHECK(listed == reference.size());
}

TEST_CASE("a lookup's work: one hash, one access per cache line, one comparison per name passed") {
  bloom::NameSet set(1);
  bloom::Work work;
  set.insert("luna1", work);
  bloom::Work lookup;
  CHECK(set.contains("luna1", lookup));
  CHECK(lookup.hashes == 1);
  CHECK(lookup.accesses == 1);
  CHECK(lookup.compares == 1);
  bloom::BloomFilter filter(1000, 5, 1);
  bloom::Work add;
  filter.add("luna1", add);
  CHECK(add.hashes == 1);
  CHECK(add.accesses == 5);
  bloom::Work query;
  CHECK(filter.might_contain("luna1", query));
  CHECK(query.accesses == 5);  // a "maybe" reads all k bits; a "no" stops at the first clear one
}

TEST_CASE(
    "the false-positive rate agrees with (1 - e^(-kn/m))^k within 10% on 250 000 negative "
    "lookups, on every one of 20 seeds per (m/n, k)") {
  // n = 50 000 names. With N = 250 000 lookups of absent names the count of false positives
  // is Binomial(N, p): its relative standard deviation is 1/sqrt(N p), 2.0% for p = 1%; the
  // filter's fill f varies by 0.1% (relative), which moves p = f^k by k times that, 0.7%.
  // 10% is 4.7 standard deviations. Over the 20 seeds the pooled rate is within 2.5% (5 sd
  // of the pooled count).
  struct Config {
    double bits_per_key;
    int hashes;
  };
  const Config configs[] = {{6, 4}, {bloom::bits_per_key_for(0.01), 7}, {10, 2}, {10, 12}};
  const std::uint64_t names = 50000, lookups = 250000;
  for (const Config& c : configs) {
    const auto bits = static_cast<std::uint64_t>(std::ceil(c.bits_per_key * names));
    const double theory = bloom::expected_fpr(static_cast<double>(bits), c.hashes, names);
    double pooled = 0;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      bloom::BloomFilter filter(bits, c.hashes, Rng::hash(seed));
      const double fpr = measured_fpr(filter, names, lookups);
      pooled += fpr / 20;
      INFO("m/n " << c.bits_per_key << ", k " << c.hashes << ", seed " << seed << ": measured "
                  << fpr << ", theory " << theory);
      CHECK(std::abs(fpr - theory) < 0.10 * theory);
    }
    INFO("m/n " << c.bits_per_key << ", k " << c.hashes << ": pooled " << pooled << ", theory "
                << theory);
    CHECK(std::abs(pooled - theory) < 0.025 * theory);
  }
}

TEST_CASE("bits per name follow from the target rate, and k = (m/n) ln 2 gives the lowest rate") {
  CHECK(bloom::bits_per_key_for(0.01) == Approx(9.585).epsilon(0.001));
  CHECK(bloom::bits_per_key_for(0.001) == Approx(14.378).epsilon(0.001));
  CHECK(bloom::optimal_hashes(bloom::bits_per_key_for(0.01)) == 7);
  CHECK(bloom::optimal_hashes(bloom::bits_per_key_for(0.001)) == 10);
  // At the optimum the rate is the target (within rounding k to an integer).
  const double m_per_n = bloom::bits_per_key_for(0.01);
  CHECK(bloom::expected_fpr(m_per_n, 7, 1) == Approx(0.01).epsilon(0.03));
  // Measured: k = 7 beats k = 3 and k = 14 on the same names and lookups.
  const std::uint64_t names = 20000, bits = 191700;
  auto rate = [&](int k) {
    bloom::BloomFilter filter(bits, k, 42);
    return measured_fpr(filter, names, 400000);
  };
  const double k3 = rate(3), k7 = rate(7), k14 = rate(14);
  INFO("k=3 " << k3 << ", k=7 " << k7 << ", k=14 " << k14);
  CHECK(k7 < k3 * 0.8);  // theory: 0.0101 vs 0.0176 and 0.0151
  CHECK(k7 < k14 * 0.8);
}

TEST_CASE("a counting Bloom filter forgets the names removed from it and keeps the others") {
  const std::uint64_t names = 40000;
  const auto cells = static_cast<std::uint64_t>(std::ceil(bloom::bits_per_key_for(0.01) * names));
  bloom::CountingBloomFilter filter(cells, 7, 99);
  bloom::Work work;
  char buffer[16];
  for (std::uint64_t id = 0; id < 2 * names; ++id) filter.add(bloom::username(id, buffer), work);
  for (std::uint64_t id = names; id < 2 * names; ++id)
    filter.remove(bloom::username(id, buffer), work);
  for (std::uint64_t id = 0; id < names; ++id)  // no false negative
    REQUIRE(filter.might_contain(bloom::username(id, buffer), work));
  // The removed names are gone: the rate is that of a filter holding the n others.
  std::uint64_t positives = 0;
  const std::uint64_t lookups = 300000;
  for (std::uint64_t id = names; id < names + lookups; ++id)
    positives += filter.might_contain(bloom::username(id, buffer), work);
  const double fpr = static_cast<double>(positives) / lookups;
  const double theory = bloom::expected_fpr(static_cast<double>(cells), 7, names);
  INFO("measured " << fpr << ", theory " << theory);
  CHECK(std::abs(fpr - theory) < 0.1 * theory);
  for (std::uint64_t id = 0; id < names; ++id) filter.remove(bloom::username(id, buffer), work);
  CHECK(filter.fill() == 0);
  CHECK(filter.memory_bytes() == (cells + 1) / 2);
}

TEST_CASE(
    "clearing a deleted name's bits in a plain filter erases other names: 1 - e^(-k^2 d / m) of "
    "them") {
  // A surviving name's bit is cleared when one of the d k positions of the deleted names hits
  // it: probability 1 - e^(-k d / m) per bit, so a survivor loses one of its k bits (and
  // reads "absent": a false negative) with probability 1 - e^(-k^2 d / m). For k = 7, d = n/10
  // and m/n = 9.6 that is 40% of the survivors.
  const std::uint64_t names = 40000, deleted = names / 10;
  const int k = 7;
  const auto bits = static_cast<std::uint64_t>(std::ceil(bloom::bits_per_key_for(0.01) * names));
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    bloom::BloomFilter filter(bits, k, seed);
    bloom::Work work;
    char buffer[16];
    for (std::uint64_t id = 0; id < names; ++id) filter.add(bloom::username(id, buffer), work);
    for (std::uint64_t id = 0; id < deleted; ++id) filter.clear(bloom::username(id, buffer), work);
    std::uint64_t lost = 0;
    for (std::uint64_t id = deleted; id < names; ++id)
      lost += !filter.might_contain(bloom::username(id, buffer), work);
    const double share = static_cast<double>(lost) / static_cast<double>(names - deleted);
    const double theory = 1 - std::exp(-double(k) * k * deleted / static_cast<double>(bits));
    INFO("seed " << seed << ": " << lost << " survivors lost (" << share << "), theory " << theory);
    CHECK(std::abs(share - theory) < 0.05 * theory);
  }
}

TEST_CASE(
    "every check the filter passes costs one database query, every other none; no variant but "
    "the broken delete answers \"free\" for a taken name") {
  // Reads and writes (half releases) over 200 000 names, 100 000 of them taken at the start.
  const auto r = run_all(checks(5000, 200000, 0.2), seconds(5), {});
  const auto checks_made = figure(r, "db_lookup", "checks");
  REQUIRE(checks_made > 15000);
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(s.completed == s.requests);
    CHECK(figure(s, "checks") == checks_made);  // the same traffic
    CHECK(figure(s, "names") == figure(r, "db_lookup", "names"));
    const std::string name = v;
    const double positives = figure(s, "checks") - figure(s, "negative_checks");
    if (name == "db_lookup") CHECK(figure(s, "db_lookups") == checks_made);
    if (name == "exact_set") CHECK(figure(s, "db_lookups") == 0);
    if (name == "bloom" || name == "counting_bloom")
      CHECK(figure(s, "db_lookups") == positives + figure(s, "false_positives"));
    if (name != "bloom_clear_on_delete") CHECK(figure(s, "false_negatives") == 0);
  }
  CHECK(figure(r, "bloom_clear_on_delete", "false_negatives") > 0);
  // Every write is a database statement: releases of names nobody has and registrations of
  // taken names are refused alike in every variant.
  for (const char* v : kVariants)
    CHECK(row(r, v).count(Outcome::rejected) == row(r, "db_lookup").count(Outcome::rejected));
}

TEST_CASE("the filter is sized from the target rate; memory is counted in bytes") {
  const auto r = run_all(checks(100, 1000000), seconds(1), {{"target_fpr", 0.01}});
  const double bits = std::ceil(100000 * bloom::bits_per_key_for(0.01));
  CHECK(figure(r, "bloom", "filter_cells") == bits);
  CHECK(figure(r, "bloom", "filter_hashes") == 7);
  CHECK(figure(r, "bloom", "memory_bytes") == std::ceil(bits / 64) * 8);
  CHECK(figure(r, "counting_bloom", "memory_bytes") == std::ceil(bits / 2));
  // 100 000 names need 2^18 slots of 16 bytes to stay under 3/4 full: 4 MiB, 42 bytes a name.
  CHECK(figure(r, "exact_set", "memory_bytes") == 16 * (1 << 18));
  CHECK(figure(r, "db_lookup", "memory_bytes") == 0);
  CHECK(figure(r, "bloom", "bytes_per_name") == Approx(bits / 8 / 100000).epsilon(0.001));
  CHECK(figure(r, "bloom", "expected_fpr") == Approx(0.01).epsilon(0.03));
  // A filter sized for fewer names than it holds is fuller: capacity 50 000, 100 000 names.
  const auto small = run_all(checks(100, 1000000), seconds(1), {{"capacity", 50000}});
  CHECK(figure(small, "bloom", "expected_fpr") > 0.1);
}

TEST_CASE("a check's latency is its work priced by the cost model, plus db_time at the database") {
  // 1 us per hash, nothing else: a check that needs no query takes exactly 1 us, one that does
  // 1 us + 1 ms. 20 checks a second never queue.
  const Map costs{{"hash_ns", 1000.0}, {"access_ns", 0.0}, {"compare_ns", 0.0}};
  const auto r = run_all(checks(20, 1000000), seconds(20), costs);
  CHECK(row(r, "exact_set").max == Approx(1e-6).epsilon(0.01));
  CHECK(row(r, "db_lookup").p50 == Approx(1e-3).epsilon(0.01));  // no hash: straight to the DB
  CHECK(row(r, "db_lookup").max == Approx(1e-3).epsilon(0.01));
  CHECK(row(r, "bloom").p50 == Approx(1e-6).epsilon(0.01));  // 90% of the names are free
  CHECK(row(r, "bloom").max == Approx(1.001e-3).epsilon(0.01));
  // A check of an absent name reads bits until the first clear one: P(it reads more than i)
  // = fill^i, so (1 - fill^k) / (1 - fill) bits on average, ~2 at a fill of 1/2; a check of a
  // taken name reads all k.
  // The tolerance is 5 standard errors of that mean: E[reads^2] = sum (2i + 1) fill^i, i < k.
  const auto d = run_all(checks(1000, 1000000), seconds(5), {});
  const double f = figure(d, "bloom", "filter_fill"), k = 7, n = figure(d, "bloom", "checks");
  const double negative = figure(d, "bloom", "negative_checks") / n;
  const double mean_reads = (1 - std::pow(f, k)) / (1 - f);
  double square_reads = 0;
  for (int i = 0; i < k; ++i) square_reads += (2 * i + 1) * std::pow(f, i);
  const double variance = square_reads - mean_reads * mean_reads;
  CHECK(std::abs(figure(d, "bloom", "accesses_per_check") -
                 (negative * mean_reads + (1 - negative) * k)) <
        5 * std::sqrt(negative * variance / n));
}

TEST_CASE("the lesson's measured false-positive rate agrees with its expected rate on 10 seeds") {
  // Reads only over 10^6 names (90% free): 45 000 negative checks a run, p ~ 1%: standard
  // deviation 0.047 points; 5 of them allowed.
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const auto r = hldlab::testing::run_experiment(checks(10000, 1000000), seconds(5),
                                                   {{"bloom_filter", "bloom"}}, seed);
    const double n = figure(r, "bloom", "negative_checks");
    const double p = figure(r, "bloom", "expected_fpr");
    const double fpr = figure(r, "bloom", "false_positive_rate");
    INFO("seed " << seed << ": measured " << fpr << ", expected " << p);
    CHECK(std::abs(fpr - p) < 5 * std::sqrt(p * (1 - p) / n) + 0.001);
  }
}

TEST_CASE(
    "under churn a plain filter's rate creeps up with stale names, a rebuild restores it, the "
    "counting filter never needs one") {
  // 20 000 names taken of 40 000, 40% writes (half of them releases) for 20 s: ~10 000 names
  // released and as many registered.
  Workload w = checks(5000, 40000, 0.4);
  Experiment e({.duration = seconds(20)});
  e.set_workload(w);
  SystemSlot& plain =
      e.add(hldlab::testing::registry(), "bloom_filter", "bloom", {{"registered", 20000}});
  SystemSlot& counting =
      e.add(hldlab::testing::registry(), "bloom_filter", "counting_bloom", {{"registered", 20000}});
  const auto r = e.run();
  const double stale = figure(r, "bloom", "stale_names");
  INFO("stale names " << stale);
  CHECK(stale > 5000);
  CHECK(figure(r, "bloom", "expected_fpr") > 3 * figure(r, "counting_bloom", "expected_fpr"));
  CHECK(figure(r, "bloom", "false_positive_rate") >
        2 * figure(r, "counting_bloom", "false_positive_rate"));
  CHECK(figure(r, "counting_bloom", "expected_fpr") < 0.012);
  const Value rebuilt = plain.call("rebuild", {});
  CHECK(rebuilt["stale_names"].as_int() == 0);
  CHECK(rebuilt["expected_fpr"].as_double() ==
        Approx(figure(r, "counting_bloom", "expected_fpr")).epsilon(1e-9));
  CHECK(rebuilt["filter_fill"].as_double() ==
        Approx(counting.call("stats", {})["filter_fill"].as_double()).epsilon(0.001));
  ExperimentConfig other;
  Experiment exact(other);
  REQUIRE_THROWS_WITH(
      exact.add(hldlab::testing::registry(), "bloom_filter", "exact_set").call("rebuild", {}),
      Catch::Contains("no filter"));
}

TEST_CASE("after a warm-up the figures count the checks that arrived after it") {
  Experiment e({.duration = seconds(4), .warmup = seconds(2)});
  Workload w = hldlab::testing::constant_workload(1000, 0, 1000000);
  e.set_workload(w);
  e.add(hldlab::testing::registry(), "bloom_filter", "bloom");
  const auto r = e.run();
  CHECK(figure(r, "bloom", "checks") == row(r, "bloom").requests);
  CHECK(figure(r, "bloom", "checks") == Approx(2000).margin(2));
}

TEST_CASE("the bloom_filter script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("bloom_filter.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}
