#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "btree.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using db::BPlusTree;
using db::IndexKey;
using db::TreeWork;
using namespace hldlab::testing;

namespace {

IndexKey key(std::int32_t v) {
  IndexKey k;
  k.columns[0] = v;
  k.row = static_cast<std::uint32_t>(v);
  return k;
}

BPlusTree bulk_loaded(std::size_t n, std::size_t fanout) {
  std::vector<IndexKey> keys;
  for (std::size_t i = 0; i < n; ++i) keys.push_back(key(static_cast<std::int32_t>(i)));
  BPlusTree tree(fanout);
  tree.bulk_load(keys);
  return tree;
}

/// The entries of [from, to] and the pages read to find them.
std::vector<std::int32_t> scan(const BPlusTree& tree, std::int32_t from, std::int32_t to,
                               TreeWork& work) {
  std::vector<std::int32_t> found;
  tree.scan(key(from), key(to), work, [&](const IndexKey& k) {
    found.push_back(k.columns[0]);
    return true;
  });
  return found;
}

/// One db_indexing system, alone, with these parameters.
struct Db {
  explicit Db(const std::string& variant, const Map& params, std::uint64_t seed = 1)
      : e(config(seed)), s(e.add(registry(), "db_indexing", variant, params)) {}
  static ExperimentConfig config(std::uint64_t seed) {
    ExperimentConfig c;
    c.seed = seed;
    return c;
  }
  Value explain(std::int64_t k) { return s.call("explain", {{"key", k}}); }
  Value stats() { return s.call("stats", {}); }
  Experiment e;
  SystemSlot& s;
};

/// Every variant on the same `rps` reads for 2 s (constant arrivals, keys uniform over 1000).
ExperimentResult run(const std::vector<hldlab::testing::SystemSpec>& systems, double rps = 20,
                     double writes = 0, std::uint64_t seed = 1) {
  Workload w = hldlab::testing::constant_workload(rps, 0, 1000);
  w.write_share = writes;
  return hldlab::testing::run_experiment(w, seconds(2), systems, seed);
}

}  // namespace

TEST_CASE(
    "a bulk-loaded B+-tree is ceil(log_B n) levels high and a lookup visits exactly that "
    "many nodes") {
  for (std::size_t fanout : {3, 4, 10, 64, 512}) {
    std::vector<std::size_t> sizes = {1, 2, fanout - 1, fanout, fanout + 1, 1000, 54321};
    for (std::size_t power = fanout; power < 200000; power *= fanout)
      sizes.insert(sizes.end(), {power - 1, power, power + 1});
    for (std::size_t n : sizes) {
      const BPlusTree tree = bulk_loaded(n, fanout);
      const int expected = BPlusTree::height_for(n, fanout);
      INFO("B = " << fanout << ", n = " << n);
      CHECK(tree.height() == expected);
      // The formula, in floating point, away from exact powers where rounding could bite.
      if (n > 1 && std::abs(std::log(double(n)) / std::log(double(fanout)) -
                            std::round(std::log(double(n)) / std::log(double(fanout)))) > 1e-9)
        CHECK(expected ==
              static_cast<int>(std::ceil(std::log(double(n)) / std::log(double(fanout)))));
      for (std::size_t i = 0; i < n; i += std::max<std::size_t>(1, n / 97)) {
        TreeWork work;
        const auto found =
            scan(tree, static_cast<std::int32_t>(i), static_cast<std::int32_t>(i), work);
        REQUIRE(found.size() == 1);
        CHECK(found[0] == static_cast<std::int32_t>(i));
        CHECK(work.pages_read == expected);  // root to leaf, the high key saves the next leaf
      }
    }
  }
}

TEST_CASE("a range scan reads the height, then one more page per leaf boundary it crosses") {
  const std::size_t fanout = 16, n = 5000;  // leaves hold keys [16 j, 16 j + 15]
  const BPlusTree tree = bulk_loaded(n, fanout);
  REQUIRE(tree.height() == 4);  // 16^3 = 4096 < 5000 <= 16^4
  for (std::int32_t from : {0, 15, 16, 100, 4990}) {
    for (std::int32_t length : {1, 2, 16, 17, 200}) {
      const std::int32_t to = std::min<std::int32_t>(from + length - 1, n - 1);
      TreeWork work;
      const auto found = scan(tree, from, to, work);
      INFO("[" << from << ", " << to << "]");
      CHECK(found.size() == static_cast<std::size_t>(to - from + 1));
      CHECK(work.pages_read == tree.height() + (to / 16 - from / 16));
    }
  }
}

TEST_CASE("an insert into a full leaf splits it, and a full root splits into a new level") {
  SECTION("three full leaves under a root with room: leaf, new leaf and parent are written") {
    BPlusTree tree = bulk_loaded(12, 4);
    REQUIRE(tree.height() == 2);
    TreeWork work;
    IndexKey k = key(1);
    k.row = 100;  // (1, row 100) sorts between 1 and 2
    tree.insert(k, work);
    CHECK(work.pages_read == 2);
    CHECK(work.splits == 1);
    CHECK(work.pages_written == 3);
    CHECK(tree.height() == 2);
    CHECK(tree.leaves() == 4);
  }
  SECTION("four full leaves under a full root: the root splits too and the tree grows") {
    BPlusTree tree = bulk_loaded(16, 4);
    TreeWork work;
    IndexKey k = key(1);
    k.row = 100;
    tree.insert(k, work);
    CHECK(work.pages_read == 2);
    CHECK(work.splits == 2);
    CHECK(work.pages_written == 5);  // leaf, new leaf, root, its new sibling, the new root
    CHECK(tree.height() == 3);
  }
}

TEST_CASE("inserts in any order keep every key findable and in order") {
  std::mt19937 random(7);
  std::vector<std::int32_t> values(20000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::int32_t>(i);
  std::shuffle(values.begin(), values.end(), random);
  BPlusTree shuffled(8), ascending(8);
  TreeWork work;
  for (std::int32_t v : values) shuffled.insert(key(v), work);
  for (std::int32_t v = 0; v < 20000; ++v) ascending.insert(key(v), work);
  for (const BPlusTree* tree : {&shuffled, &ascending}) {
    TreeWork all;
    const auto found = scan(*tree, 0, 19999, all);
    REQUIRE(found.size() == 20000);
    for (std::int32_t v = 0; v < 20000; ++v) REQUIRE(found[static_cast<std::size_t>(v)] == v);
    for (std::int32_t v : {0, 1, 4095, 19999}) {
      TreeWork one;
      CHECK(scan(*tree, v, v, one).size() == 1);
      CHECK(one.pages_read == tree->height());
    }
  }
  // Ascending inserts split the rightmost leaf leaving it full: as compact as a bulk load.
  CHECK(ascending.leaves() == 2500);
  CHECK(ascending.height() == BPlusTree::height_for(20000, 8));
  // Random inserts split half and half: leaves end between half and fully full (~69%).
  CHECK(shuffled.leaves() > 2500);
  CHECK(shuffled.leaves() < 5000);
}

TEST_CASE("the lesson's index has the formula's height, and its lookups read it") {
  for (std::int64_t rows : {1000, 100000}) {
    for (std::int64_t page : {256, 8192}) {
      Db d("index", {{"rows", rows}, {"page_size", page}, {"row_bytes", 16}});
      const Value ix = d.stats()["indexes"].as_list()[0];
      const auto fanout = ix["fanout"].as_int();
      INFO(rows << " rows, pages of " << page << " bytes");
      CHECK(fanout == page / 16);  // (8-byte key + 8-byte row pointer) per entry
      CHECK(ix["height"].as_int() == BPlusTree::height_for(static_cast<std::size_t>(rows),
                                                           static_cast<std::size_t>(fanout)));
      CHECK(ix["height"].as_int() == ix["formula_height"].as_int());
      for (std::int64_t k = 0; k < 40; ++k) {
        const Value plan = d.explain(k);
        // A customer's few entries lie in one leaf, or straddle two.
        CHECK(plan["index_pages"].as_int() >= ix["height"].as_int());
        CHECK(plan["index_pages"].as_int() <= ix["height"].as_int() + 1);
      }
    }
  }
}

TEST_CASE(
    "a full scan reads every page for 8 rows; the index reads its height and one heap page "
    "per row") {
  // One row per page (row_bytes = page_size): every row fetched is one heap page.
  const Map params{{"rows", 20000}, {"row_bytes", 8192}};
  Db scan("full_scan", params), index("index", params);
  const auto height = index.stats()["indexes"].as_list()[0]["height"].as_int();
  REQUIRE(height == 2);  // 20 000 entries, 512 per page
  std::int64_t rows = 0;
  for (std::int64_t k = 0; k < 200; ++k) {
    const Value a = scan.explain(k), b = index.explain(k);
    INFO("key " << k << "\n" << a["plan"].as_string() << "\n" << b["plan"].as_string());
    CHECK(a["scan"].as_string() == "seq_scan");
    CHECK(a["heap_pages"].as_int() == 20000);
    CHECK(a["rows"].as_int() == b["rows"].as_int());  // the same table, the same answer
    CHECK(b["scan"].as_string() == "index_scan");
    CHECK(b["heap_pages"].as_int() == b["rows"].as_int());
    CHECK(b["index_pages"].as_int() >= height);
    CHECK(b["index_pages"].as_int() <= height + 1);
    rows += b["rows"].as_int();
  }
  // 2500 customers with 8 rows each on average: the 200 customers asked for hold ~1600.
  CHECK(std::abs(static_cast<double>(rows) - 1600) < 5 * std::sqrt(1600.0));
}

TEST_CASE("a statement's time is the overhead plus its pages and rows at the stated costs") {
  // Requests every second on 8 workers: nobody queues, the latency is the service time.
  const Map params{{"rows", 6400}};  // 100 pages of 64 rows
  const auto r = run({{"db_indexing", "full_scan", params}}, 1);
  const auto& s = row(r, "full_scan");
  REQUIRE(s.requests == 1);  // at 1 s
  CHECK(figure(s, "pages_per_select") == 100);
  // 50 us + 100 pages in sequence x 25 us + 6400 rows x 200 ns = 3.83 ms
  CHECK(s.mean == Approx(0.00383).epsilon(1e-9));
  // An index lookup: 50 us + (2 index pages + 1 heap page per row) x 100 us + 2 x 200 ns per row
  Db index("index", params);
  for (std::int64_t k = 0; k < 20; ++k) {
    const Value plan = index.explain(k);
    const double rows = static_cast<double>(plan["rows"].as_int());
    const double pages =
        static_cast<double>(plan["index_pages"].as_int() + plan["heap_pages"].as_int());
    CHECK(plan["time"].as_double() ==
          Approx(50e-6 + pages * 100e-6 + rows * 2 * 200e-9).epsilon(1e-9));
  }
}

TEST_CASE("leftmost prefix: an index on (customer_id, created_at) cannot search created_at alone") {
  const Map query{{"query", "created_range"}, {"rows", 50000}};
  Map wrong = query, right = query;
  wrong["indexes"] = "customer_id,created_at";
  right["indexes"] = "created_at,customer_id";
  Db a("index", wrong), b("cost_based", wrong), c("index", right);
  const auto heap = a.stats()["heap_pages"].as_int();
  for (std::int64_t k = 0; k < 20; ++k) {
    for (Db* d : {&a, &b}) {
      const Value plan = d->explain(k);
      INFO(plan["plan"].as_string());
      CHECK(plan["scan"].as_string() == "seq_scan");
      CHECK(plan["heap_pages"].as_int() == heap);
    }
    const Value plan = c.explain(k);
    INFO(plan["plan"].as_string());
    CHECK(plan["scan"].as_string() == "index_scan");
    // One day of a year is ~137 rows, stored in created_at order: 3 or 4 heap pages of 64.
    CHECK(plan["heap_pages"].as_int() <= 4);
    CHECK(plan["rows"].as_int() == a.explain(k)["rows"].as_int());
  }
}

TEST_CASE("a composite (customer_id, created_at) index fetches only the rows of the range") {
  const Map base{{"query", "customer_recent"}, {"rows", 50000}, {"row_bytes", 8192}};
  Map single = base, composite = base;
  single["indexes"] = "customer_id";
  composite["indexes"] = "customer_id,created_at";
  Db one("index", single), two("index", composite);
  std::int64_t fetched_one = 0, fetched_two = 0, rows = 0;
  for (std::int64_t k = 0; k < 100; ++k) {
    const Value a = one.explain(k), b = two.explain(k);
    REQUIRE(a["rows"].as_int() == b["rows"].as_int());
    CHECK(b["heap_pages"].as_int() == b["rows"].as_int());  // only the matching rows
    CHECK(a["heap_pages"].as_int() >= b["heap_pages"].as_int());
    fetched_one += a["heap_pages"].as_int(), fetched_two += b["heap_pages"].as_int();
    rows += a["rows"].as_int();
  }
  // The last 90 days are 90/365 of a customer's rows: the single index fetches ~4x more.
  CHECK(fetched_two == rows);
  CHECK(fetched_one > 3 * fetched_two);
}

TEST_CASE("a covering index answers from the index alone: no heap page") {
  const Map base{{"query", "customer_amount"}, {"rows", 50000}};
  Map plain = base, covering = base;
  plain["indexes"] = "customer_id";
  covering["indexes"] = "customer_id,amount";
  Db a("index", plain), b("index", covering);
  for (std::int64_t k = 0; k < 50; ++k) {
    const Value x = a.explain(k), y = b.explain(k);
    INFO(y["plan"].as_string());
    CHECK(x["scan"].as_string() == "index_scan");
    CHECK(y["scan"].as_string() == "index_only_scan");
    CHECK(y["heap_pages"].as_int() == 0);
    CHECK(y["rows"].as_int() == x["rows"].as_int());
    CHECK(x["heap_pages"].as_int() >= (x["rows"].as_int() > 0 ? 1 : 0));
  }
}

TEST_CASE(
    "on a low-selectivity column the index loses to the scan and the cost-based planner "
    "scans, except for the rare value") {
  const Map params{{"query", "status"}, {"indexes", "status"}, {"rows", 50000}};
  Db scan("full_scan", params), rule("index", params), cost("cost_based", params);
  const auto heap = scan.stats()["heap_pages"].as_int();  // 782 pages of 64 rows
  for (std::int64_t s = 0; s < 5; ++s) {  // delivered, shipped, pending, cancelled, disputed
    const Value a = scan.explain(s), b = rule.explain(s), c = cost.explain(s);
    INFO(c["plan"].as_string());
    CHECK(b["scan"].as_string() == "index_scan");
    CHECK(a["rows"].as_int() == b["rows"].as_int());
    CHECK(c["rows"].as_int() == b["rows"].as_int());
    if (s < 4) {
      // Thousands of rows spread over the table: nearly every page, each a random read (and
      // the index's leaves on top), against the same pages read in sequence.
      CHECK(b["heap_pages"].as_int() > heap * 9 / 10);
      CHECK(b["time"].as_double() > 2 * a["time"].as_double());
      CHECK(c["scan"].as_string() == "seq_scan");
      CHECK(c["heap_pages"].as_int() == heap);
    } else {
      // 'disputed' is 0.1%: ~50 rows, far fewer pages than the scan.
      CHECK(c["scan"].as_string() == "index_scan");
      CHECK(c["heap_pages"].as_int() < heap / 10);
      CHECK(c["estimated_pages"].as_double() < c["seq_scan_pages"].as_double());
    }
  }
}

TEST_CASE("every index adds its height in page reads and a page write to every INSERT") {
  // Fresh inserts of ever-later created_at go to the rightmost leaf of a created_at index;
  // with 10 000 rows its last leaf (of 512) holds 272 entries: no split in 40 inserts. Rows
  // inserted by customer go anywhere in a customer_id index: leaves are full after the bulk
  // load, so the first insert into each splits it.
  std::vector<hldlab::testing::SystemSpec> systems;
  systems.push_back({"db_indexing", "index", {{"rows", 10000}, {"indexes", ""}}, "none"});
  systems.push_back({"db_indexing", "index", {{"rows", 10000}, {"indexes", "created_at"}}, "one"});
  systems.push_back(
      {"db_indexing", "index", {{"rows", 10000}, {"indexes", "created_at;customer_id"}}, "two"});
  const auto r = run(systems, 20, 1.0);
  REQUIRE(row(r, "none").requests == 39);                    // every 50 ms from 50 ms to 1.95 s
  CHECK(figure(r, "none", "pages_per_insert") == 1);         // the heap page
  CHECK(figure(r, "one", "pages_per_insert") == 1 + 2 + 1);  // + 2 levels read, the leaf written
  // customer_id: 2 read + the leaf written + (on a split) the new leaf and the parent.
  const double two = figure(r, "two", "pages_per_insert");
  CHECK(two >= 4 + 3);
  CHECK(two <= 4 + 3 + 2);
  CHECK(row(r, "none").mean < row(r, "one").mean);
  CHECK(row(r, "one").mean < row(r, "two").mean);
}

TEST_CASE("the same seed gives the same table in every variant; another seed another table") {
  Db a("full_scan", {{"rows", 5000}}, 1), b("index", {{"rows", 5000}}, 1),
      c("full_scan", {{"rows", 5000}}, 2);
  std::int64_t same = 0, differ = 0;
  for (std::int64_t k = 0; k < 50; ++k) {
    same += a.explain(k)["rows"].as_int() == b.explain(k)["rows"].as_int();
    differ += a.explain(k)["rows"].as_int() != c.explain(k)["rows"].as_int();
  }
  CHECK(same == 50);
  CHECK(differ > 10);
}
