// Benchmark (not a test): simulated viewing sessions per second of wall time through the
// video_streaming lesson, each variant alone: 200 sessions/s of a 5-minute video (75 segments
// each) on Markov links for 60 s of virtual time. Prints a table; never asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "video_streaming");
  Workload w;
  w.arrivals.rps = 200;
  for (const char* v : {"fixed_high", "fixed_low", "throughput", "bba"}) {
    // A session lasts up to video + abandon_after = 360 s: drain them all.
    Experiment e({.duration = seconds(60), .drain = seconds(600)});
    e.set_workload(w);
    e.add(lessons, "video_streaming", v, {});
    const double start = bench::now_seconds();
    const ExperimentResult r = e.run();
    bench::report(std::string("video_streaming/") + v, static_cast<double>(r.systems[0].completed),
                  bench::now_seconds() - start, "sessions");
    const auto& figures = r.systems[0].figures;
    std::printf("  %-10s rebuffer ratio %.4f, mean bitrate %.2f Mbit/s, abandoned %.0f\n", v,
                figures.at("rebuffer_ratio").as_double(), figures.at("mean_bitrate").as_double(),
                figures.at("abandoned").as_double());
  }
  return 0;
}
