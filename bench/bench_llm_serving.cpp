// Benchmark (not a test): simulation speed of the llm_serving lesson. Each variant serves one
// hour of virtual traffic alone (8 requests/s on one replica, then 40 requests/s with shared
// prefixes over 8 replicas); prints the requests completed per second of wall time and the
// figures that matter (virtual output tokens per second, mean batch). Never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

namespace {

void show(const ExperimentResult& r) {
  const Map& f = r.systems[0].figures;
  std::printf("    virtual: %.0f output tokens/s, mean batch %.1f, prefix hit rate %.2f\n",
              f.at("tokens_per_second").as_double(), f.at("mean_batch").as_double(),
              f.at("prefix_hit_rate").as_double());
}

}  // namespace

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "llm_serving");
  Workload w;
  w.arrivals.rps = 8;
  for (const char* v : {"static_batching", "continuous_batching", "paged_kv"})
    show(bench::run_lesson(lessons, "llm_serving", v, {}, w, seconds(3600)));
  w.arrivals.rps = 40;
  for (const char* routing : {"round_robin", "least_tokens", "prefix_aware"})
    show(bench::run_lesson(lessons, "llm_serving", "paged_kv",
                           {{"replicas", 8},
                            {"routing", routing},
                            {"prefix_share", 0.8},
                            {"prefix_tokens", 512},
                            {"max_prompt_tokens", 512}},
                           w, seconds(3600),
                           std::string("llm_serving/paged_kv 8 replicas ") + routing));
  return 0;
}
