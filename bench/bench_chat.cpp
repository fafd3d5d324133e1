// Benchmark (not a test): simulated messages per second of wall time through the chat lesson,
// each variant alone: 20000 users (80 % online), 3000 messages/s over Zipf(1.1) conversations
// for 60 s of virtual time. Polling also simulates 16000 polls/s. Prints a table; never
// asserts on time.
#include <cstdio>

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "chat");
  Workload w;
  w.arrivals.rps = 3000;
  w.keys = KeyDistribution::zipf(10000, 1.1);
  for (const char* v : {"polling", "long_polling", "push", "push_store_forward"}) {
    const ExperimentResult r =
        bench::run_lesson(lessons, "chat", v, {{"users", 20000}}, w, seconds(60));
    const auto& figures = r.systems[0].figures;
    std::printf("  %-20s DB %.0f queries/s, lost %.0f, out of order %.0f\n", v,
                figures.at("db_qps").as_double(), figures.at("lost").as_double(),
                figures.at("out_of_order").as_double());
  }
  return 0;
}
