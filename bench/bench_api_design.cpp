// Benchmark (not a test): simulated screens per second through the api_design lesson per
// variant, and paginate walks per second (offset against keyset). Prints a table; never asserts
// on time.
#include <string>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "api_design");
  Workload w;
  w.arrivals.rps = 20000;
  w.keys = KeyDistribution::zipf(100000, 1.0);
  for (const char* v : {"rest", "graphql", "graphql_dataloader", "composite"})
    bench::run_lesson(lessons, "api_design", v, {}, w, seconds(30));
  Experiment e;
  SystemSlot& s = e.add(lessons, "api_design", "composite");
  for (const char* mode : {"offset", "keyset"}) {
    const int walks = 20;
    const double start = bench::now_seconds();
    for (int i = 0; i < walks; ++i)
      s.call("paginate", Map{{"mode", mode},
                             {"rows", 100000},
                             {"page_size", 20},
                             {"pages", 1000},
                             {"inserts_per_page", 0},
                             {"deletes_per_page", 0}});
    bench::report(std::string("api_design/paginate ") + mode +
                      " 1000 pages of 100k rows (with building the feed)",
                  walks * 1000.0, bench::now_seconds() - start, "pages");
  }
  return 0;
}
