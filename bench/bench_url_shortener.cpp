// Benchmark (not a test): simulated requests per second through the url_shortener lesson
// (creates and cached or uncached redirects), and the raw speed of minting codes. Prints a
// table; never asserts on time.

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "url_shortener");
  Workload creates;
  creates.arrivals.rps = 20000;
  creates.keys = KeyDistribution::uniform(10000);
  creates.write_share = 1;
  bench::run_lesson(lessons, "url_shortener", "hash_retry", {{"code_space", 4e6}}, creates,
                    seconds(60), "url_shortener/hash_retry creates (to 30 % full)");
  bench::run_lesson(lessons, "url_shortener", "base62_counter", {}, creates, seconds(60),
                    "url_shortener/base62_counter creates");
  Workload clicks;
  clicks.arrivals.rps = 20000;
  clicks.keys = KeyDistribution::zipf(100000, 1.0);
  clicks.clients = 100000;
  clicks.write_share = 0.01;
  bench::run_lesson(lessons, "url_shortener", "base62_counter", {{"db_workers", 64}}, clicks,
                    seconds(60), "url_shortener/base62_counter redirects, no cache");
  bench::run_lesson(lessons, "url_shortener", "base62_counter", {{"cache_entries", 10000}}, clicks,
                    seconds(60), "url_shortener/base62_counter redirects, LRU 10k");
  bench::run_lesson(lessons, "url_shortener", "base62_counter",
                    {{"cache_entries", 10000}, {"redirect", "301"}}, clicks, seconds(60),
                    "url_shortener/base62_counter redirects, LRU 10k, 301");
  return 0;
}
