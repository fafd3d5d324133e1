// Benchmark (not a test): simulated feed requests per second of wall time through the news_feed
// lesson, each variant alone on the script's traffic at 5x the rate (5000 requests/s, 5 %
// posts, Zipf(0.7) over 10000 users) for 60 s of virtual time. Push also simulates every
// timeline insert of its fan-out (in batches of 100). Prints a table; never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "news_feed");
  Workload w;
  w.arrivals.rps = 5000;
  w.keys = KeyDistribution::zipf(10000, 0.7);
  w.write_share = 0.05;
  // 16 fan-out workers: push's 5x posts need 4x the script's fan-out capacity.
  const Map params{{"fanout_workers", 16}, {"db_workers", 64}};
  for (const char* v : {"pull", "push", "hybrid"}) {
    const ExperimentResult r = bench::run_lesson(lessons, "news_feed", v, params, w, seconds(60));
    const auto& figures = r.systems[0].figures;
    std::printf("  %-8s writes/post %.1f, queries/read %.2f, staleness P99 %.1f ms\n", v,
                figures.at("writes_per_post").as_double(),
                figures.at("queries_per_read").as_double(),
                figures.at("staleness_p99").as_double() * 1e3);
  }
  return 0;
}
