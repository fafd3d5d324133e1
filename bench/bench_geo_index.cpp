// Benchmark (not a test): the geo_index lesson's structures on this machine: 5-nearest queries
// per second and location updates per second for the scan, the geohash grid (own cell, and
// with its neighbours) and the quadtree, at 5000, 50 000 and 500 000 drivers spread evenly
// over a 20 km city or crowded in its centre; then the lesson itself (requests per second of
// wall time). Prints figures; never asserts on time.
#include <cmath>
#include <cstdio>
#include <numbers>
#include <vector>

#include "../plugins/geo_index/geo.hpp"
#include "bench_support.hpp"

using namespace hldlab;
using namespace hldlab::geo;

namespace {

constexpr double kSide = 20000;
volatile double sink;

void place(Rng& rng, bool centre, double& x, double& y) {
  if (centre && rng.chance(0.7)) {
    do {
      x = 1500 * rng.normal(), y = 1500 * rng.normal();
    } while (std::abs(x) >= kSide / 2 || std::abs(y) >= kSide / 2);
    return;
  }
  x = (rng.uniform() - 0.5) * kSide, y = (rng.uniform() - 0.5) * kSide;
}

/// Queries in batches of 100 until half a second has passed.
template <class Query>
void queries(const char* name, const std::vector<double>& qx, const std::vector<double>& qy,
             Query query) {
  KNearest best(5);
  Work w;
  double total = 0;
  std::size_t count = 0;
  const double start = bench::now_seconds();
  while (bench::now_seconds() - start < 0.5)
    for (int i = 0; i < 100; ++i, ++count) {
      query(qx[count % qx.size()], qy[count % qy.size()], best, w);
      total += best.bound2();
    }
  bench::report(name, static_cast<double>(count), bench::now_seconds() - start, "queries");
  std::printf("   %.1f drivers examined, %.1f cells or nodes per query\n",
              static_cast<double>(w.points) / count, static_cast<double>(w.nodes) / count);
  sink = total;
}

void bench_fleet(std::size_t n, bool centre) {
  std::printf("-- %zu drivers, %s\n", n, centre ? "70% in a centre (sd 1.5 km)" : "spread evenly");
  Rng rng(3);
  Points fleet;
  fleet.x.resize(n), fleet.y.resize(n);
  for (std::size_t d = 0; d < n; ++d) place(rng, centre, fleet.x[d], fleet.y[d]);
  std::vector<double> qx(100000), qy(100000);
  for (std::size_t i = 0; i < qx.size(); ++i) place(rng, centre, qx[i], qy[i]);
  GeohashGrid grid(fleet, Geohash{6}, Projection{}, kSide);
  QuadTree tree(fleet, kSide, 8, 24);
  std::printf("   index bytes per driver: grid %.1f, quadtree %.1f (%zu leaves, depth %d)\n",
              static_cast<double>(grid.bytes()) / n, static_cast<double>(tree.bytes()) / n,
              tree.leaves(), tree.depth());

  queries("scan", qx, qy, [&](double x, double y, KNearest& best, Work& w) {
    best.clear();
    for (PointId d = 0; d < n; ++d) best.offer(d, fleet.distance2(d, x, y));
    w.points += static_cast<std::int64_t>(n);
  });
  queries("geohash_cell", qx, qy,
          [&](double x, double y, KNearest& best, Work& w) { grid.own_cell(x, y, best, w); });
  queries("geohash_neighbors", qx, qy,
          [&](double x, double y, KNearest& best, Work& w) { grid.nearest(x, y, best, w); });
  queries("quadtree", qx, qy,
          [&](double x, double y, KNearest& best, Work& w) { tree.nearest(x, y, best, w); });

  // Location updates: a driver moves up to 200 m (clamped to the city).
  const std::size_t updates = 2'000'000;
  std::vector<PointId> who(updates);
  std::vector<double> dx(updates), dy(updates);
  for (std::size_t i = 0; i < updates; ++i) {
    who[i] = static_cast<PointId>(rng.below(n));
    const double angle = 2 * std::numbers::pi * rng.uniform(), step = 200 * rng.uniform();
    dx[i] = step * std::cos(angle), dy[i] = step * std::sin(angle);
  }
  const double edge = kSide / 2 * (1 - 1e-9);
  auto update = [&](const char* name, auto follow) {
    Work w;
    std::size_t moved = 0;
    const double start = bench::now_seconds();
    for (std::size_t i = 0; i < updates; ++i) {
      const PointId d = who[i];
      fleet.x[d] = std::clamp(fleet.x[d] + dx[i], -edge, edge);
      fleet.y[d] = std::clamp(fleet.y[d] + dy[i], -edge, edge);
      moved += follow(d, w);
    }
    bench::report(name, static_cast<double>(updates), bench::now_seconds() - start, "updates");
    std::printf("   %.2f nodes per update, %.1f%% change cells\n",
                static_cast<double>(w.nodes) / updates, 100.0 * moved / updates);
  };
  update("scan updates (overwrite the position)",
         [](PointId, Work& w) { return ++w.nodes, false; });
  update("geohash grid updates", [&](PointId d, Work& w) { return grid.moved(d, w); });
  update("quadtree updates", [&](PointId d, Work& w) { return tree.moved(d, w); });
}

}  // namespace

int main() {
  for (std::size_t n : {5000, 50000, 500000})
    for (bool centre : {false, true}) bench_fleet(n, centre);

  std::printf("-- the lesson (5000 drivers, half queries, half location updates)\n");
  const PluginRegistry registry = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR);
  Workload w;
  w.arrivals.rps = 200000;
  w.keys = KeyDistribution::uniform(5000);
  w.write_share = 0.5;
  for (const char* v : {"scan", "geohash_cell", "geohash_neighbors", "quadtree"})
    bench::run_lesson(registry, "geo_index", v, {{"recall_sample", 0.0}}, w, seconds(1));
  return 0;
}
