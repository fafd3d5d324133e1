#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"naive", "polite_hashset", "polite_bloom"};

/// Every variant with `params`, 40 fetch slots per second (at 25 ms, 50 ms, ...) during `duration`.
ExperimentResult crawl(const Map& params, Time duration, std::uint64_t seed = 1) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"web_crawler", v, params});
  return hldlab::testing::run_experiment(hldlab::testing::constant_workload(40), duration, systems,
                                         seed);
}

}  // namespace

TEST_CASE(
    "on a one-host web the polite crawler fetches once per politeness delay; the naive one is "
    "throttled and banned after exactly ban_after 429s") {
  const auto r = crawl({{"hosts", 1}}, seconds(5));
  // Polite: the home page is ready at 0; slots at 0.025 s, then the host is ready again at
  // 1.025 s, 2.025 s, ...: five fetches in 5 s, every other slot finds nothing ready.
  for (const char* v : {"polite_hashset", "polite_bloom"}) {
    const auto& s = row(r, v);
    INFO(v);
    REQUIRE(s.requests == 199);  // slots at 25 ms, 50 ms, ..., 4975 ms
    CHECK(figure(s, "pages") == 5);
    CHECK(s.count(Outcome::ok) == 5);
    CHECK(s.count(Outcome::miss) == 194);
    CHECK(figure(s, "max_host_rate") == 1);
    CHECK(figure(s, "throttled") == 0);
    CHECK(figure(s, "robots_fetches") == 1);
  }
  // Naive: slots 1 and 2 (25 and 50 ms) are served, 3..7 answered 429 (the 5th strike bans),
  // then the 16 links of the two pages fetched are popped as errors (the host has banned the
  // crawler), then the frontier is empty.
  const auto& naive = row(r, "naive");
  CHECK(figure(naive, "pages") == 2);
  CHECK(naive.count(Outcome::ok) == 2);
  CHECK(naive.count(Outcome::rejected) == 5);
  CHECK(figure(naive, "throttled") == 5);
  CHECK(figure(naive, "banned_hosts") == 1);
  CHECK(naive.count(Outcome::error) == 1 + 16 - 7);
  CHECK(naive.count(Outcome::miss) == 199 - 17);
  CHECK(figure(naive, "max_host_rate") == 17);  // all 17 requests within the first 0.425 s
}

TEST_CASE(
    "a polite crawler never asks for a URL twice nor a page robots.txt forbids; the naive one "
    "does both") {
  const auto r = crawl({}, seconds(10));
  for (const char* v : {"polite_hashset", "polite_bloom"}) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "duplicate_fetches") == 0);
    CHECK(figure(s, "robots_violations") == 0);
    CHECK(figure(s, "pages") == s.count(Outcome::ok));
    CHECK(figure(s, "max_host_rate") == 1);  // 1 s politeness: never two in one second
    CHECK(figure(s, "banned_hosts") == 0);
    CHECK(figure(s, "robots_fetches") <= 200);
  }
  const auto& naive = row(r, "naive");
  CHECK(figure(naive, "duplicate_fetches") > 0);
  CHECK(figure(naive, "robots_violations") > 0);
  CHECK(figure(row(r, "polite_hashset"), "missed_urls") == 0);
  // The exact set costs 8 bytes per URL seen; the filter its 32768 bits.
  CHECK(figure(row(r, "polite_bloom"), "seen_bytes") == 4096);
}

TEST_CASE(
    "the Bloom filter's missed URLs agree with its false-positive rate within 25% on 5 seeds") {
  // Inserting the i-th distinct URL into m bits with k hashes, the filter says "seen" with
  // probability (1 - e^{-k i / m})^k: the expected misses over n URLs are the sum of that. n is
  // the exact crawler's seen set (8 bytes per URL); the Bloom crawler's own n differs only by
  // the URLs it missed and their descendants. About 25 misses per seed: Poisson sd 5 %/sqrt(5)
  // ~ 9 % of the 5-seed total.
  const double m = 32768, k = 4;
  double expected = 0, missed = 0;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const auto r = crawl({}, seconds(20), seed);
    const double n = figure(row(r, "polite_hashset"), "seen_bytes") / 8;
    for (double i = 0; i < n; ++i) expected += std::pow(1 - std::exp(-k * i / m), k);
    missed += figure(row(r, "polite_bloom"), "missed_urls");
  }
  INFO("expected " << expected << ", missed " << missed);
  CHECK(missed == Approx(expected).epsilon(0.25));
}

TEST_CASE("after a warm-up the counts restart while the crawl goes on") {
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(40),
                                                 {.duration = seconds(4), .warmup = seconds(2)},
                                                 {{"web_crawler", "polite_hashset", {}}});
  const auto& s = row(r, "polite_hashset");
  CHECK(s.requests == 80);
  CHECK(figure(s, "pages") == s.count(Outcome::ok));
  CHECK(figure(s, "pages") > 0);
}

TEST_CASE("the script's claims hold") {
  const ScriptResult r = hldlab::testing::run_script_file("web_crawler.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
