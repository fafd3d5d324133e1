#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "ann.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// Every vector's distance to `q`, sorted (distance, id): the reference answer.
std::vector<ann::Neighbor> sorted_reference(const ann::Dataset& d, const float* q,
                                            std::int32_t category) {
  std::vector<ann::Neighbor> all;
  for (std::uint32_t i = 0; i < d.size; ++i)
    if (d.matches(i, category)) all.push_back({ann::distance(q, d.at(i), d.dim), i});
  std::sort(all.begin(), all.end());
  return all;
}

/// Mean recall@10 of `search` over `queries` queries drawn near the clusters.
template <class Search>
double mean_recall(const ann::Dataset& d, Rng& rng, int queries, Search search,
                   double* distances = nullptr) {
  std::vector<float> q(static_cast<std::size_t>(d.dim));
  ann::TopK top;
  std::vector<ann::Neighbor> truth, found;
  double sum = 0;
  std::uint64_t work = 0, exact_work = 0;
  for (int i = 0; i < queries; ++i) {
    d.point_near(rng, rng.below(static_cast<std::uint64_t>(d.clusters)), q.data());
    ann::brute_force(d, q.data(), 10, ann::kAnyCategory, top, truth, exact_work);
    search(q.data(), found, work);
    sum += ann::recall(truth, found);
  }
  if (distances != nullptr) *distances = static_cast<double>(work) / queries;
  return sum / queries;
}

Map lesson_figures(const std::string& variant, const Map& params, std::uint64_t seed = 1) {
  return run_experiment(poisson_workload(200), seconds(1), {{"vector_index", variant, params}},
                        seed)
      .systems[0]
      .figures;
}

}  // namespace

TEST_CASE("brute force returns exactly the k nearest of a sorted reference") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Rng rng(seed);
    const ann::Dataset d = ann::Dataset::clustered(500, 16, 8, 0.5, 4, rng);
    std::vector<float> q(16);
    ann::TopK top;
    std::vector<ann::Neighbor> found;
    for (int i = 0; i < 20; ++i) {
      d.point_near(rng, rng.below(8), q.data());
      const std::int32_t category =
          i % 2 == 0 ? ann::kAnyCategory : static_cast<std::int32_t>(i % 4);
      const auto reference = sorted_reference(d, q.data(), category);
      std::uint64_t work = 0;
      ann::brute_force(d, q.data(), 10, category, top, found, work);
      REQUIRE(found.size() == 10);
      CHECK(std::equal(found.begin(), found.end(), reference.begin()));
      CHECK(work == reference.size());  // one distance per (matching) vector
    }
  }
}

TEST_CASE("brute force on points of a line finds the integers nearest the query") {
  // Ten points at x = 0..9 (dim 1); the query 6.2: nearest 6, 7, 5, 8 at distances^2 0.04,
  // 0.64, 1.44, 3.24.
  ann::Dataset d;
  d.dim = 1;
  d.size = 10;
  d.clusters = 1;
  for (int i = 0; i < 10; ++i) d.vectors.push_back(static_cast<float>(i));
  d.categories.assign(10, 0);
  d.categories[7] = 1;
  const float q = 6.2f;
  ann::TopK top;
  std::vector<ann::Neighbor> found;
  std::uint64_t work = 0;
  ann::brute_force(d, &q, 4, ann::kAnyCategory, top, found, work);
  REQUIRE(found.size() == 4);
  CHECK(found[0].id == 6);
  CHECK(found[1].id == 7);
  CHECK(found[2].id == 5);
  CHECK(found[3].id == 8);
  CHECK(found[0].dist == Approx(0.04).epsilon(1e-5));
  CHECK(work == 10);
  // With the filter "category 1" only point 7 matches; the check costs no distance.
  work = 0;
  ann::brute_force(d, &q, 4, 1, top, found, work);
  REQUIRE(found.size() == 1);
  CHECK(found[0].id == 7);
  CHECK(work == 1);
}

TEST_CASE("IVF probing every list is exact; probing one costs nlist plus one list") {
  Rng rng(7);
  const ann::Dataset d = ann::Dataset::clustered(1000, 16, 10, 0.5, 1, rng);
  ann::Ivf ivf;
  Rng build_rng(1);
  ivf.build(d, 20, 8, build_rng);
  std::size_t listed = 0;
  for (const auto& list : ivf.lists()) listed += list.size();
  CHECK(listed == 1000);  // every vector in exactly one list
  ann::TopK top;
  double work = 0;
  const double all = mean_recall(
      d, rng, 50,
      [&](const float* q, std::vector<ann::Neighbor>& out, std::uint64_t& w) {
        ivf.search(q, 10, 20, ann::kAnyCategory, top, out, w);
      },
      &work);
  CHECK(all == 1.0);
  CHECK(work == 20 + 1000);
  // k-means: (iterations + 1) assignment passes of N x nlist distances.
  CHECK(ivf.build_distances() == 9u * 1000 * 20);
}

TEST_CASE("HNSW recall@10 is at least 0.95 at ef_search 64 (2000 vectors, 5 seeds)") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Rng rng(seed);
    const ann::Dataset d = ann::Dataset::clustered(2000, 32, 20, 0.6, 1, rng);
    ann::Hnsw hnsw;
    Rng build_rng(seed + 100);
    hnsw.build(d, 12, 80, build_rng);
    double work = 0;
    const double recall = mean_recall(
        d, rng, 100,
        [&](const float* q, std::vector<ann::Neighbor>& out, std::uint64_t& w) {
          hnsw.search(q, 10, 64, ann::kAnyCategory, ann::Hnsw::Filter::during_search, out, w);
        },
        &work);
    INFO("seed " << seed << ": recall " << recall << ", " << work << " distances per query");
    CHECK(recall >= 0.95);
    CHECK(work < 2000 / 2);  // at least twice fewer distances than brute force
  }
}

TEST_CASE("HNSW levels are geometric: a share 1/M of the vectors reach level 1") {
  // level = floor(-ln U / ln M) >= 1 iff U <= 1/M: Binomial(N, 1/M), sd sqrt(N p (1-p)).
  Rng rng(3);
  const std::size_t n = 4000;
  const ann::Dataset d = ann::Dataset::clustered(n, 8, 4, 0.5, 1, rng);
  ann::Hnsw hnsw;
  hnsw.build(d, 8, 40, rng);
  std::size_t upper = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    upper += hnsw.level(i) >= 1 ? 1 : 0;
    for (int l = 0; l <= hnsw.level(i); ++l)
      CHECK(hnsw.neighbors(i, l).size() <= hnsw.max_links(l));
  }
  const double p = 1.0 / 8, sd = std::sqrt(static_cast<double>(n) * p * (1 - p));
  CHECK(std::abs(static_cast<double>(upper) - static_cast<double>(n) * p) < 5 * sd);
}

TEST_CASE("the cost model turns distance computations into search time") {
  // Brute force over 2000 vectors of dimension 32: 2000 distances, 20 us + 2000 x 32 x 0.5 ns.
  const Map f = lesson_figures("brute_force", {});
  CHECK(f.at("distances_per_query").as_double() == 2000);
  CHECK(f.at("recall").as_double() == 1.0);
  CHECK(f.at("search_seconds").as_double() == Approx(52e-6));
  CHECK(f.at("bytes_per_vector").as_double() == 32 * 4);
  CHECK(f.at("build_distances").as_int() == 0);
  // IVF: 40 centroids plus the probed lists; memory adds an id per vector and the centroids.
  const Map ivf = lesson_figures("ivf", {});
  CHECK(ivf.at("distances_per_query").as_double() > 40);
  CHECK(ivf.at("distances_per_query").as_double() < 2000);
  CHECK(ivf.at("bytes_per_vector").as_double() == Approx(128 + 4 + 40.0 * 32 * 4 / 2000));
  CHECK(ivf.at("build_distances").as_int() == 9 * 2000 * 40);
}

TEST_CASE("a filter applied after the search loses recall; applied during it, it does not") {
  // Every query filters one of 10 categories: post-filtering keeps ~10% of the ef_search = 32
  // candidates, about 3 of the 10 wanted; filtering during the walk keeps looking.
  const Map filtered{{"filtered_share", 1.0}};
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    INFO("seed " << seed);
    const Map post = lesson_figures("hnsw_post_filter", filtered, seed);
    const Map during = lesson_figures("hnsw", filtered, seed);
    const Map exact = lesson_figures("brute_force", filtered, seed);
    CHECK(exact.at("filtered_recall").as_double() == 1.0);
    CHECK(post.at("filtered_recall").as_double() < 0.6);
    CHECK(during.at("filtered_recall").as_double() > 0.9);
    CHECK(post.at("short_results").as_int() > 0);
    CHECK(during.at("short_results").as_int() == 0);
  }
}

TEST_CASE("evaluate draws the same queries in every variant and records nothing") {
  Experiment e;
  SystemSlot& ivf = e.add(hldlab::testing::registry(), "vector_index", "ivf");
  SystemSlot& exact = e.add(hldlab::testing::registry(), "vector_index", "brute_force");
  const Value all = ivf.call("evaluate", Map{{"queries", 50}, {"nprobe", 40}});
  CHECK(all["recall"].as_double() == 1.0);
  CHECK(all["distances"].as_double() == 2040);
  const Value one = ivf.call("evaluate", Map{{"queries", 50}, {"nprobe", 1}});
  CHECK(one["recall"].as_double() < all["recall"].as_double());
  CHECK(exact.call("evaluate", Map{{"queries", 50}})["distances"].as_double() == 2000);
}
