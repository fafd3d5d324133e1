// Benchmark (not a test): simulated orders per second through the message_queue lesson, each
// variant alone on 10 000 orders/s for 60 s (three messages per order, 64 consumers per service at
// 60% utilisation; the sync chain makes three calls per order). Prints orders and messages per
// second of wall time; never asserts on time.

#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "message_queue");
  Workload w;
  w.arrivals.rps = 10000;
  w.service = Distribution::exponential(static_cast<double>(microseconds(3840)));
  for (const char* v : {"sync_chain", "at_most_once", "at_least_once", "effectively_once",
                        "dead_letter", "bounded_backoff", "load_shedding", "autoscaling"}) {
    const double start = bench::now_seconds();
    const ExperimentResult r = bench::run_lesson(
        lessons, "message_queue", v, {{"consumers", 64}, {"max_consumers", 128}}, w, seconds(60));
    const double elapsed = bench::now_seconds() - start;
    const auto& f = r.systems[0].figures;
    if (f.count("processed"))
      bench::report(std::string("    messages processed (") + v + ")",
                    f.at("processed").as_double(), elapsed, "messages");
  }
  return 0;
}
