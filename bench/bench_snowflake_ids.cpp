// Benchmark (not a test): ids generated per second of wall time through the runtime, per id
// scheme, including the final duplicate/ordering check (a sort of every id). Never asserts.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "snowflake_ids");
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 1e6;
  w.service = Distribution::constant(0);
  for (const auto& [variant, workers] :
       {std::pair{"auto_increment", 2}, std::pair{"snowflake", 8}, std::pair{"sonyflake", 100}}) {
    const auto r =
        bench::run_lesson(lessons, "snowflake_ids", variant, {{"workers", workers}}, w, seconds(5),
                          std::string(variant) + " " + std::to_string(workers) + " workers");
    std::printf("  duplicates %lld\n",
                static_cast<long long>(r.systems[0].figures.at("duplicates").as_int()));
  }
  return 0;
}
