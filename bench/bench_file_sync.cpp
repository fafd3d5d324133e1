// Benchmark (not a test): chunking throughput of the file_sync lesson's real algorithms on
// 64 MiB of random bytes (content hash of the whole buffer, fixed 4 KiB blocks, Gear CDC at
// 4 KiB), then simulated syncs per second through the lesson, each variant alone (40 syncs/s
// of 128 KiB files for 60 s of virtual time). Prints a table; never asserts on time.

#include "../plugins/file_sync/chunking.hpp"
#include "bench_support.hpp"

using namespace hldlab;

int main() {
  const std::size_t n = 64 << 20;
  std::vector<std::uint8_t> data(n);
  Rng rng(1);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng.next());
  file_sync::Work work;
  double start = bench::now_seconds();
  volatile std::uint64_t sink = file_sync::content_hash(data.data(), n, work);
  bench::report("content hash (64 MiB)", static_cast<double>(n), bench::now_seconds() - start,
                "bytes");
  start = bench::now_seconds();
  sink = file_sync::fixed_blocks(data, 4096, work).size();
  bench::report("fixed 4 KiB blocks + hashes", static_cast<double>(n), bench::now_seconds() - start,
                "bytes");
  const file_sync::GearChunker chunker(4096);
  start = bench::now_seconds();
  sink = chunker.chunks(data, work).size();
  bench::report("Gear CDC 4 KiB + hashes", static_cast<double>(n), bench::now_seconds() - start,
                "bytes");
  (void)sink;

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "file_sync");
  Workload w;
  w.arrivals.rps = 40;
  w.keys = KeyDistribution::uniform(32);
  for (const char* v : {"whole_file", "fixed_blocks", "cdc"})
    bench::run_lesson(lessons, "file_sync", v, {}, w, seconds(60));
  return 0;
}
