#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// Expected retries when inserting n random codes one by one into a space of m, retrying a
/// taken code: insert i finds a taken code with probability q = i / m each time, so it retries
/// a geometric number of times, mean q / (1 - q) and variance q / (1 - q)^2.
struct Theory {
  double mean = 0, variance = 0;
};
Theory expected_retries(double n, double m) {
  Theory t;
  for (double i = 0; i < n; ++i) {
    const double q = i / m;
    t.mean += q / (1 - q);
    t.variance += q / ((1 - q) * (1 - q));
  }
  return t;
}

/// Only creates: `creates` of them at 1000 rps.
ExperimentResult creates_run(double creates,
                             const std::vector<hldlab::testing::SystemSpec>& systems,
                             std::uint64_t seed = 1) {
  Workload w = hldlab::testing::constant_workload(1000);
  w.write_share = 1;
  return run_experiment(w, seconds((creates + 1) / 1000), systems, seed);
}

/// One preloaded link, then `clicks` redirects of it (only reads) by `clients` clients.
ExperimentResult clicks_run(double clicks, std::uint32_t clients,
                            const std::vector<hldlab::testing::SystemSpec>& systems) {
  Workload w = hldlab::testing::constant_workload(1000, milliseconds(1), 1);
  w.clients = clients;
  return run_experiment(w, seconds((clicks + 1) / 1000), systems, 1, [](Experiment& e) {
    for (const auto& s : e.systems()) s->call("preload", Map{{"links", 1}});
  });
}

}  // namespace

TEST_CASE("truncated-hash collisions follow the birthday bound as the table fills") {
  // 20 000 URLs into spaces of 10^6, 10^5, 4 10^4 and 25 000 codes: 2 % to 80 % full.
  for (double m : {1e6, 1e5, 4e4, 25e3}) {
    for (std::uint64_t seed : {1, 2}) {
      const auto r =
          creates_run(20000, {{"url_shortener", "hash_retry", {{"code_space", m}}}}, seed);
      const double n = figure(r, "hash_retry", "codes_created");
      REQUIRE(n == 20000);
      const Theory t = expected_retries(n, m);
      const double collisions = figure(r, "hash_retry", "collisions");
      INFO("M = " << m << ", seed " << seed << ": " << collisions << " collisions, theory "
                  << t.mean << " +- " << std::sqrt(t.variance));
      CHECK(std::abs(collisions - t.mean) < 5 * std::sqrt(t.variance));
      // Every candidate is one database read; every create one insert.
      CHECK(figure(r, "hash_retry", "db_reads") == n + collisions);
      CHECK(figure(r, "hash_retry", "db_writes") == n);
      CHECK(figure(r, "hash_retry", "fill") == Approx(n / m));
    }
  }
  // At a low fill the sum is the birthday bound n^2 / 2M: 200 at 2 %.
  CHECK(expected_retries(20000, 1e6).mean == Approx(20000.0 * 20000 / 2e6).epsilon(0.02));
}

TEST_CASE("ids from per-server ranges never collide and need no read: one write per range") {
  // One app server, ranges of 100 ids: 1000 creates take ids 0..999 and 10 ranges.
  const auto r = creates_run(
      1000, {{"url_shortener", "base62_counter", {{"app_servers", 1}, {"range_size", 100}}}});
  CHECK(figure(r, "base62_counter", "codes_created") == 1000);
  CHECK(figure(r, "base62_counter", "collisions") == 0);
  CHECK(figure(r, "base62_counter", "duplicate_codes") == 0);
  CHECK(figure(r, "base62_counter", "db_reads") == 0);
  CHECK(figure(r, "base62_counter", "db_writes") == 1010);
  // Ids 0..61 are one base62 character, 62..999 two: (62 + 2 * 938) / 1000.
  CHECK(figure(r, "base62_counter", "code_chars") == Approx(1.938));
  // Four servers, each with its own ranges: still no duplicate among 20 000 codes.
  const auto four = creates_run(20000, {{"url_shortener", "base62_counter", {}}});
  CHECK(figure(four, "base62_counter", "duplicate_codes") == 0);
  CHECK(figure(four, "base62_counter", "fill") == Approx(20000 / 14776336.0));
}

TEST_CASE("a full code space refuses creates instead of retrying for ever") {
  const auto r = creates_run(100, {{"url_shortener", "hash_retry", {{"code_space", 50}}}});
  CHECK(figure(r, "hash_retry", "codes_created") == 50);
  CHECK(row(r, "hash_retry").count(Outcome::error) == 50);
}

TEST_CASE("a redirect cache misses once per link and hits after") {
  const auto r = clicks_run(1000, 1000,
                            {{"url_shortener", "base62_counter", {{"cache_entries", 10}}, "cached"},
                             {"url_shortener", "base62_counter", {}, "uncached"}});
  CHECK(row(r, "cached").count(Outcome::miss) == 1);
  CHECK(row(r, "cached").count(Outcome::hit) == 999);
  CHECK(figure(r, "cached", "db_reads") == 1);
  CHECK(figure(r, "uncached", "db_reads") == 1000);
  // A hit costs cache_time (0.2 ms), a database read 1 ms.
  CHECK(figure(r, "cached", "redirect_p50") == Approx(0.0002).epsilon(0.01));
  CHECK(figure(r, "uncached", "redirect_p50") == Approx(0.001).epsilon(0.01));
}

TEST_CASE("a 301 is cached by the browser: a client's later clicks never reach the server") {
  // 1000 clicks on one link by 10 clients: with 301 each client is seen once, 990 clicks lost.
  const auto r =
      clicks_run(1000, 10,
                 {{"url_shortener", "base62_counter", {{"redirect", "301"}}, "permanent"},
                  {"url_shortener", "base62_counter", {{"redirect", "302"}}, "temporary"}});
  CHECK(figure(r, "permanent", "clicks") == 1000);
  CHECK(figure(r, "permanent", "clicks_counted") == 10);
  CHECK(figure(r, "permanent", "clicks_lost") == 990);
  CHECK(figure(r, "temporary", "clicks_counted") == 1000);
  CHECK(figure(r, "temporary", "clicks_lost") == 0);
  CHECK(row(r, "permanent").metrics.at("clicks_lost").as_double() == 990);
}

TEST_CASE("the url_shortener script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("url_shortener.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 8);
  REQUIRE(r.exit_code() == 0);
}
