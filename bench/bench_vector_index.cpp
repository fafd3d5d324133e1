// Benchmark (not a test): queries per second (one core, wall clock) of the vector_index
// lesson's indexes on 100 000 vectors of dimension 64 (100 Gaussian clusters, spread 1.3 as in the
// lesson), at the cheapest setting that reaches recall@10 of 0.9 and of 0.99: brute force (always
// exact), IVF (nlist 316 ~ sqrt(N), nprobe swept) and HNSW (M 16, ef_construction 100, ef_search
// swept). Also the build time and the memory per vector. Prints a table; never asserts on time.
#include <cstdio>
#include <vector>

#include "../plugins/vector_index/ann.hpp"
#include "bench_support.hpp"

using namespace hldlab;

namespace {

constexpr std::size_t kVectors = 100000;
constexpr int kDim = 64, kQueries = 500;

struct Point {
  double recall, qps, distances;
};

/// Queries per second of one core under the lesson's cost model (20 us + 0.5 ns per dimension
/// of each distance): stable where the wall clock is not (a loaded machine).
double model_qps(double distances) {
  return 1e9 / (20000 + distances * kDim * 0.5);
}

/// Recall@10, queries per second and distances per query of `search` over the query set.
template <class Search>
Point measure(const std::vector<std::vector<float>>& queries,
              const std::vector<std::vector<ann::Neighbor>>& truth, Search search) {
  std::vector<ann::Neighbor> found;
  std::uint64_t distances = 0;
  double recall = 0;
  const double start = bench::now_seconds();
  for (std::size_t i = 0; i < queries.size(); ++i) {
    search(queries[i].data(), found, distances);
    recall += ann::recall(truth[i], found);
  }
  const double elapsed = bench::now_seconds() - start;
  const double n = static_cast<double>(queries.size());
  return {recall / n, n / elapsed, static_cast<double>(distances) / n};
}

/// Sweep `values` of a search parameter; print every point and the one with the fewest
/// distance computations reaching recall 0.9 and 0.99.
template <class Search>
void sweep(const char* index, const char* parameter, const std::vector<int>& values,
           const std::vector<std::vector<float>>& queries,
           const std::vector<std::vector<ann::Neighbor>>& truth, Search search) {
  const Point* at[2] = {nullptr, nullptr};
  int setting[2] = {0, 0};
  std::vector<Point> points;
  points.reserve(values.size());
  for (int v : values) {
    points.push_back(
        measure(queries, truth, [&](const float* q, auto& out, auto& d) { search(q, v, out, d); }));
    const Point& p = points.back();
    std::printf("  %-6s %-9s %5d  recall %.4f  %9.0f queries/s  %8.0f distances\n", index,
                parameter, v, p.recall, p.qps, p.distances);
  }
  const double targets[2] = {0.9, 0.99};
  for (int t = 0; t < 2; ++t)
    for (std::size_t i = 0; i < points.size(); ++i)
      if (points[i].recall >= targets[t] &&
          (at[t] == nullptr || points[i].distances < at[t]->distances))
        at[t] = &points[i], setting[t] = values[i];
  for (int t = 0; t < 2; ++t) {
    if (at[t] == nullptr)
      std::printf("%-6s recall %.2f: not reached\n", index, targets[t]);
    else
      std::printf(
          "%-6s recall %.2f: %9.0f queries/s at %s %d (%.0f distances per query, %.0f "
          "queries/s in the cost model)\n",
          index, targets[t], at[t]->qps, parameter, setting[t], at[t]->distances,
          model_qps(at[t]->distances));
  }
}

}  // namespace

int main() {
  Rng rng(42);
  double start = bench::now_seconds();
  const ann::Dataset data = ann::Dataset::clustered(kVectors, kDim, 100, 1.3, 10, rng);
  std::vector<std::vector<float>> queries(kQueries, std::vector<float>(kDim));
  std::vector<std::vector<ann::Neighbor>> truth(kQueries);
  ann::TopK top;
  for (int i = 0; i < kQueries; ++i) data.point_near(rng, rng.below(100), queries[i].data());
  const Point exact = measure(queries, truth, [&](const float* q, auto& out, auto& d) {
    ann::brute_force(data, q, 10, ann::kAnyCategory, top, out, d);
  });
  for (int i = 0; i < kQueries; ++i) {
    std::uint64_t d = 0;
    ann::brute_force(data, queries[i].data(), 10, ann::kAnyCategory, top, truth[i], d);
  }
  std::printf("data: %zu vectors of dimension %d, %d queries (%.1f s)\n", kVectors, kDim, kQueries,
              bench::now_seconds() - start);
  std::printf(
      "brute  recall 1.00 (and 0.9, 0.99): %9.0f queries/s (%.0f distances), %d B per vector\n",
      exact.qps, exact.distances, kDim * 4);

  ann::Ivf ivf;
  Rng build_rng(1);
  start = bench::now_seconds();
  ivf.build(data, 316, 10, build_rng);
  std::printf("ivf    build %.1f s (%llu distances), %.1f B per vector\n",
              bench::now_seconds() - start, static_cast<unsigned long long>(ivf.build_distances()),
              kDim * 4 + ivf.index_bytes() / static_cast<double>(kVectors));
  sweep("ivf", "nprobe", {1, 2, 4, 8, 16, 32, 64}, queries, truth,
        [&](const float* q, int nprobe, auto& out, auto& d) {
          ivf.search(q, 10, nprobe, ann::kAnyCategory, top, out, d);
        });

  ann::Hnsw hnsw;
  start = bench::now_seconds();
  hnsw.build(data, 16, 100, build_rng);
  std::printf("hnsw   build %.1f s (%llu distances), %.1f B per vector\n",
              bench::now_seconds() - start, static_cast<unsigned long long>(hnsw.build_distances()),
              kDim * 4 + hnsw.index_bytes() / static_cast<double>(kVectors));
  sweep("hnsw", "ef_search", {10, 16, 32, 64, 128, 256, 512}, queries, truth,
        [&](const float* q, int ef, auto& out, auto& d) {
          hnsw.search(q, 10, ef, ann::kAnyCategory, ann::Hnsw::Filter::during_search, out, d);
        });
  return 0;
}
