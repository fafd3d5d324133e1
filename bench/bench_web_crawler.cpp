// Benchmark (not a test): simulated fetch slots per second of wall time through the web_crawler
// lesson, each variant alone: 2000 hosts of 10000 pages, 400 fetch slots per second for 60 s of
// virtual time (a Bloom filter of 2^20 bits for the Bloom variant). Prints a table; never
// asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "web_crawler");
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 400;
  const Map params{{"hosts", 2000}, {"pages_per_host", 10000}, {"bloom_bits", 1 << 20}};
  for (const char* v : {"naive", "polite_hashset", "polite_bloom"}) {
    const ExperimentResult r = bench::run_lesson(lessons, "web_crawler", v, params, w, seconds(60));
    const auto& figures = r.systems[0].figures;
    std::printf("  %-16s pages %.0f, duplicates %.0f, banned hosts %.0f, missed %.0f\n", v,
                figures.at("pages").as_double(), figures.at("duplicate_fetches").as_double(),
                figures.at("banned_hosts").as_double(), figures.at("missed_urls").as_double());
  }
  return 0;
}
