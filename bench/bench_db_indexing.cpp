// Benchmark (not a test): the db_indexing lesson's B+-tree at 10^6 and 10^7 entries (bulk
// load, point lookups, range scans, inserts in key order and at random, operations per second
// of this machine, with the pages and height they touch), then the lesson itself on a table of
// 10^6 rows: statements per second of wall time for a full scan, an index lookup and INSERTs.
// Prints figures; never asserts on time.
#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "../plugins/db_indexing/btree.hpp"
#include "bench_support.hpp"

using namespace hldlab;
using db::BPlusTree;
using db::IndexKey;
using db::TreeWork;

namespace {

IndexKey key(std::int32_t v, std::uint32_t row) {
  IndexKey k;
  k.columns[0] = v;
  k.row = row;
  return k;
}

volatile std::int64_t sink;

void bench_tree(std::size_t n, std::size_t fanout) {
  std::printf("-- B+-tree of %zu entries, %zu per 8 KiB page (one 8-byte key column)\n", n, fanout);
  std::vector<IndexKey> keys(n);
  for (std::size_t i = 0; i < n; ++i)
    keys[i] = key(static_cast<std::int32_t>(2 * i), static_cast<std::uint32_t>(i));
  BPlusTree tree(fanout);
  double start = bench::now_seconds();
  tree.bulk_load(keys);
  bench::report("bulk load (CREATE INDEX on sorted entries)", static_cast<double>(n),
                bench::now_seconds() - start, "entries");
  std::printf("   height %d = ceil(log_%zu %zu) = %d, %zu pages\n", tree.height(), fanout, n,
              BPlusTree::height_for(n, fanout), tree.pages());

  std::mt19937_64 random(1);
  const std::size_t lookups = 2'000'000;
  TreeWork work;
  std::int64_t found = 0;
  start = bench::now_seconds();
  for (std::size_t i = 0; i < lookups; ++i) {
    const auto v = static_cast<std::int32_t>(2 * (random() % n));
    tree.scan(key(v, 0), key(v, UINT32_MAX), work, [&](const IndexKey&) { return ++found, true; });
  }
  bench::report("point lookups (random keys)", static_cast<double>(lookups),
                bench::now_seconds() - start, "lookups");
  std::printf("   %.2f pages and %.1f comparisons per lookup\n",
              static_cast<double>(work.pages_read) / lookups,
              static_cast<double>(work.comparisons) / lookups);

  work = {};
  const std::size_t ranges = 200'000;
  start = bench::now_seconds();
  for (std::size_t i = 0; i < ranges; ++i) {
    const auto v = static_cast<std::int32_t>(2 * (random() % (n - 1000)));
    tree.scan(key(v, 0), key(v + 2000, UINT32_MAX), work,
              [&](const IndexKey&) { return ++found, true; });
  }
  bench::report("range scans of 1000 entries", static_cast<double>(ranges),
                bench::now_seconds() - start, "scans");
  std::printf("   %.2f pages per range scan\n", static_cast<double>(work.pages_read) / ranges);

  work = {};
  const std::size_t inserts = 1'000'000;
  start = bench::now_seconds();
  for (std::size_t i = 0; i < inserts; ++i)
    tree.insert(
        key(static_cast<std::int32_t>(2 * (random() % n) + 1), static_cast<std::uint32_t>(n + i)),
        work);
  bench::report("inserts at random places", static_cast<double>(inserts),
                bench::now_seconds() - start, "inserts");
  std::printf("   %.2f pages read, %.2f written, %.3f splits per insert\n",
              static_cast<double>(work.pages_read) / inserts,
              static_cast<double>(work.pages_written) / inserts,
              static_cast<double>(work.splits) / inserts);

  BPlusTree ascending(fanout);
  work = {};
  start = bench::now_seconds();
  for (std::size_t i = 0; i < n; ++i) ascending.insert(key(static_cast<std::int32_t>(i), 0), work);
  bench::report("inserts in key order (an auto-increment id)", static_cast<double>(n),
                bench::now_seconds() - start, "inserts");
  std::printf("   height %d, %zu leaves (bulk load: %zu)\n", ascending.height(), ascending.leaves(),
              (n + fanout - 1) / fanout);
  sink = found;
}

}  // namespace

int main() {
  bench_tree(1'000'000, 512);
  bench_tree(10'000'000, 512);

  std::printf("-- the lesson, 10^6 rows (15 625 pages), one 8 KiB B+-tree on customer_id\n");
  const PluginRegistry registry = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  Workload reads;
  reads.arrivals.rps = 100;
  reads.keys = KeyDistribution::uniform(125000);
  const Map table{{"rows", 1000000}};
  bench::run_lesson(registry, "db_indexing", "full_scan", table, reads, seconds(2),
                    "full_scan: Seq Scan per SELECT");
  reads.arrivals.rps = 100000;
  bench::run_lesson(registry, "db_indexing", "index", table, reads, seconds(2),
                    "index: customer_id lookups");
  Workload writes = reads;
  writes.write_share = 1;
  for (const char* indexes : {"", "customer_id", "customer_id;created_at;status"}) {
    Map params = table;
    params["indexes"] = indexes;
    bench::run_lesson(registry, "db_indexing", "index", params, writes, seconds(2),
                      std::string("index: INSERTs with indexes \"") + indexes + "\"");
  }
  return 0;
}
