#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"rest", "graphql", "graphql_dataloader", "composite"};

/// 100 screens (one every 10 ms) in every variant, with `params`.
ExperimentResult screens(const Map& params) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"api_design", v, params});
  return run_experiment(hldlab::testing::constant_workload(100), milliseconds(1005), systems);
}

/// A paginate walk on a fresh system.
Map walk(const std::string& mode, std::int64_t pages, std::int64_t inserts, std::int64_t deletes,
         std::int64_t rows = 1000) {
  Experiment e;
  SystemSlot& s = e.add(registry(), "api_design", "composite");
  return s
      .call("paginate", Map{{"mode", mode},
                            {"rows", rows},
                            {"page_size", 20},
                            {"pages", pages},
                            {"inserts_per_page", inserts},
                            {"deletes_per_page", deletes}})
      .as_map();
}

double at(const Map& m, const char* k) {
  return m.at(k).as_double();
}

}  // namespace

TEST_CASE(
    "REST pays 2 + N round trips and queries; GraphQL one round trip and N + 2 queries, DataLoader "
    "3") {
  for (int n : {0, 1, 20, 100}) {
    INFO("N = " << n);
    const auto r = screens({{"posts", n}});
    CHECK(figure(r, "rest", "round_trips") == 2 + n);
    CHECK(figure(r, "rest", "db_queries") == 2 + n);
    CHECK(figure(r, "graphql", "round_trips") == 1);
    CHECK(figure(r, "graphql", "db_queries") == 2 + n);
    CHECK(figure(r, "graphql_dataloader", "db_queries") == (n > 0 ? 3 : 2));
    CHECK(figure(r, "composite", "db_queries") == 2);
    CHECK(row(r, "rest").metrics.at("round_trips").as_double() == 100.0 * (2 + n));
  }
}

TEST_CASE("screen time is round trips x rtt + database levels x db_time + bytes / bandwidth") {
  // An infinitely fast link: 22 x 100 ms + 22 x 2 ms for REST; 100 ms + 3 levels of 2 ms for
  // GraphQL (authors in parallel) and DataLoader; 100 ms + 2 x 2 ms for the join.
  const auto r = screens({{"bandwidth", 1e12}});
  CHECK(row(r, "rest").mean == Approx(2.244).epsilon(1e-6));
  CHECK(row(r, "graphql").mean == Approx(0.106).epsilon(1e-6));
  CHECK(row(r, "graphql_dataloader").mean == Approx(0.106).epsilon(1e-6));
  CHECK(row(r, "composite").mean == Approx(0.104).epsilon(1e-6));
  // At 1 MB/s the bytes add exactly their transfer time (to the nanosecond per screen).
  const auto slow = screens({});
  CHECK(row(slow, "graphql").mean - 0.106 ==
        Approx(figure(slow, "graphql", "response_bytes") / 1e6).epsilon(1e-5));
  CHECK(row(slow, "rest").mean - 2.244 ==
        Approx(figure(slow, "rest", "response_bytes") / 1e6).epsilon(1e-5));
}

TEST_CASE(
    "REST over-fetches whole resources; query-shaped answers carry only the screen's fields") {
  const auto r = screens({});
  const double needed = figure(r, "graphql", "response_bytes");
  CHECK(figure(r, "graphql", "overfetched_bytes") == 0);
  CHECK(figure(r, "graphql_dataloader", "response_bytes") == needed);
  CHECK(figure(r, "composite", "response_bytes") == needed);
  CHECK(figure(r, "rest", "response_bytes") - figure(r, "rest", "overfetched_bytes") ==
        Approx(needed));
  CHECK(figure(r, "rest", "overfetched_bytes") > 4 * needed);
}

TEST_CASE(
    "offset pages scan every row before them; keyset pages scan one page after an index seek") {
  // 10 pages of 20: offset scans 20 + 40 + ... + 200 = 1100 rows, keyset 200.
  const Map offset = walk("offset", 10, 0, 0), keyset = walk("keyset", 10, 0, 0);
  CHECK(at(offset, "rows_scanned") == 1100);
  CHECK(at(offset, "last_page_rows_scanned") == 200);
  CHECK(at(keyset, "rows_scanned") == 200);
  CHECK(at(keyset, "last_page_rows_scanned") == 20);
  CHECK(at(offset, "returned") == 200);
  CHECK(at(keyset, "returned") == 200);
  // The seek is a binary search: at most ceil(log2(rows + 1)) comparisons a page.
  for (std::int64_t rows : {1000, 100000}) {
    const Map deep = walk("keyset", 40, 0, 0, rows);
    CHECK(at(deep, "last_page_comparisons") <= std::ceil(std::log2(static_cast<double>(rows) + 1)));
    CHECK(at(deep, "last_page_comparisons") >= std::floor(std::log2(static_cast<double>(rows))));
  }
}

TEST_CASE(
    "rows inserted between pages make offset pages repeat rows, deleted ones make them skip rows") {
  // 3 rows inserted at the top before each of the 9 later pages push every row down by 3:
  // each later page starts with 3 rows already returned. Deleting 2 returned rows pulls the
  // feed up by 2: each later page skips 2 rows never returned. Keyset pages follow the cursor.
  CHECK(at(walk("offset", 10, 3, 0), "duplicates") == 27);
  CHECK(at(walk("offset", 10, 3, 0), "misses") == 0);
  CHECK(at(walk("offset", 10, 0, 2), "misses") == 18);
  CHECK(at(walk("offset", 10, 0, 2), "duplicates") == 0);
  const Map both = walk("offset", 10, 5, 2);
  CHECK(at(both, "duplicates") == 27);  // net shift down by 3 per page
  for (const auto& [inserts, deletes] : {std::pair{3, 0}, std::pair{0, 2}, std::pair{5, 2}}) {
    const Map k = walk("keyset", 10, inserts, deletes);
    CHECK(at(k, "duplicates") == 0);
    CHECK(at(k, "misses") == 0);
    CHECK(at(k, "returned") == 200);
  }
}

TEST_CASE("the api_design script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("api_design.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 7);
  REQUIRE(r.exit_code() == 0);
}
