// Benchmark (not a test): rank and top-10 queries per second at a million players, in the
// leaderboard lesson's skip list (and its updates) and in the table it replaces (a scan per
// query), with the work each query does; then simulated requests per second through the
// lesson at 10^6 players, each variant alone. Prints a table; never asserts on time.
#include <cstdio>
#include <vector>

#include "../plugins/leaderboard/ranking.hpp"
#include "bench_support.hpp"

using namespace hldlab;
using ranking::Entry;

namespace {

volatile std::uint64_t sink;  // keeps the results from being optimised away

void work_line(const char* what, const ranking::Work& w, double count) {
  std::printf("    %s: %.1f rows, %.1f nodes, %.1f comparisons each\n", what,
              static_cast<double>(w.rows) / count, static_cast<double>(w.nodes) / count,
              static_cast<double>(w.compares) / count);
}

}  // namespace

int main() {
  const std::uint32_t n = 1000000;
  Rng rng(3);
  std::vector<Entry> entries(n);
  for (std::uint32_t p = 0; p < n; ++p)
    entries[p] = {static_cast<std::int64_t>(rng.below(1000000)), 0, p};

  ranking::SkipList list(n, 9);
  ranking::Work w;
  double start = bench::now_seconds();
  for (const Entry& e : entries) list.insert(e, w);
  bench::report("skip list insert (building 10^6 players)", n, bench::now_seconds() - start, "ops");

  const int ranks = 1000000;
  std::uint64_t acc = 0;
  ranking::Work rank_work;
  start = bench::now_seconds();
  for (int i = 0; i < ranks; ++i)
    acc += list.rank(static_cast<std::uint32_t>(rng.below(n)), rank_work);
  bench::report("skip list rank query (10^6 players)", ranks, bench::now_seconds() - start,
                "queries");
  work_line("rank", rank_work, ranks);

  std::vector<Entry> top;
  ranking::Work top_work;
  start = bench::now_seconds();
  for (int i = 0; i < ranks; ++i) {
    list.top(10, top, top_work);
    acc += top.front().player;
  }
  bench::report("skip list top-10 query", ranks, bench::now_seconds() - start, "queries");

  ranking::Work update_work;
  start = bench::now_seconds();
  for (int i = 0; i < ranks; ++i) {
    const auto p = static_cast<std::uint32_t>(rng.below(n));
    Entry e = list.entry(p);
    e.score += static_cast<std::int64_t>(1 + rng.below(100));
    list.erase(p, update_work);
    list.insert(e, update_work);
  }
  bench::report("skip list score update (erase + insert)", ranks, bench::now_seconds() - start,
                "updates");
  work_line("update", update_work, ranks);

  ranking::ScoreTable table(n);
  for (const Entry& e : entries) table.set(e, w);
  const int scans = 200;
  ranking::Work scan_work;
  start = bench::now_seconds();
  for (int i = 0; i < scans; ++i)
    acc += table.rank(static_cast<std::uint32_t>(rng.below(n)), scan_work);
  bench::report("table scan rank query (COUNT(*) over 10^6 rows)", scans,
                bench::now_seconds() - start, "queries");
  work_line("rank", scan_work, scans);
  start = bench::now_seconds();
  for (int i = 0; i < scans; ++i) {
    table.top(10, top, scan_work);
    acc += top.front().player;
  }
  bench::report("table scan top-10 query (ORDER BY ... LIMIT 10)", scans,
                bench::now_seconds() - start, "queries");
  sink = acc;
  std::printf("memory: skip list %.1f B a player, table %.1f B a player\n",
              static_cast<double>(list.memory_bytes()) / n,
              static_cast<double>(table.memory_bytes()) / n);

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "leaderboard");
  Workload load;
  load.arrivals.rps = 2000;  // the scan's queries cost 45 ms of virtual time each at 10^6
  load.keys = KeyDistribution::uniform(1000000000);
  load.write_share = 0.9;
  const Map params{{"players", 1000000}, {"score_range", 1000000}};
  for (const char* v : {"table_scan", "skip_list"}) {
    const ExperimentResult r =
        bench::run_lesson(lessons, "leaderboard", v, params, load, seconds(2));
    const auto& f = r.systems[0].figures;
    std::printf("    rank P99 %.3g s, update P99 %.3g s, %.0f rows + %.1f nodes per rank\n",
                f.at("rank_p99").as_double(), f.at("update_p99").as_double(),
                f.at("rows_per_rank").as_double(), f.at("nodes_per_rank").as_double());
  }
  return 0;
}
