// Geo index: the k drivers nearest to a rider, over a fleet that keeps moving.
//
//   problem:  scan              -> compute the distance to every driver, keep the k nearest:
//                                  exact, O(n) per query (every driver of the city).
//             geohash_cell      -> bucket drivers by geohash cell; search the rider's own cell
//                                  only: cheap, but a rider near the cell's edge misses nearer
//                                  drivers just across it (and finds fewer than k in a sparse
//                                  cell): recall below 1.
//   fix:      geohash_neighbors -> search the own cell and its 8 neighbours, then further rings
//                                  while the k-th driver found is farther than the searched
//                                  block's nearest edge: exact. Cells have a fixed size, so a
//                                  crowded city centre puts hundreds of drivers in each.
//             quadtree          -> a point-region quadtree: a leaf splits in four past
//                                  `leaf_capacity` drivers, so cells shrink where drivers are
//                                  dense; best-first search is exact and examines about the
//                                  same few leaves anywhere: it adapts to density.
//   moving:   a write is a driver's location update: the scan overwrites two numbers, the grid
//             moves the driver between cells when it crosses an edge, the quadtree between
//             leaves (splitting and merging them).
//   workload: riders and drivers follow the `fleet` distribution (uniform, or a city centre
//             holding `centre_share` of them); a read is a query at a point drawn per request,
//             a write moves driver key % drivers by up to `move_m` (both the same in every
//             variant).
//   cost:     service time = request_overhead + points examined x distance_cost + nodes (cells,
//             tree nodes) visited x node_cost; requests queue for one of `workers`.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "geo.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;
using namespace hldlab::geo;

enum class Structure { scan, geohash_cell, geohash_neighbors, quadtree };

class GeoIndex final : public System {
 public:
  GeoIndex(Structure structure, const Params& p, Context& ctx)
      : structure_(structure),
        ctx_(ctx),
        side_(p.real("city_km") * 1000),
        clustered_(p.string("fleet") == "clustered"),
        centre_share_(p.real("centre_share")),
        centre_sigma_(p.real("centre_km") * 1000),
        move_(p.real("move_m")),
        recall_sample_(p.real("recall_sample")),
        overhead_(p.duration("request_overhead")),
        distance_cost_(p.duration("distance_cost")),
        node_cost_(p.duration("node_cost")),
        query_salt_(ctx.salt("rider position")),
        move_salt_(ctx.salt("driver move")),
        sample_salt_(ctx.salt("recall sample")),
        found_(p.integer<std::size_t>("k")),
        truth_(p.integer<std::size_t>("k")),
        points_metric_(ctx.metric("points_examined")),
        nodes_metric_(ctx.metric("nodes_visited")),
        missed_metric_(ctx.metric("missed_neighbours")),
        relocations_metric_(ctx.metric("relocations")),
        bytes_metric_(ctx.metric("index_bytes")),
        server_(ctx, {.workers = p.integer<int>("workers")},
                [this](Request& r) { ctx_.complete(r, Outcome::ok); }) {
    const auto n = p.integer<std::size_t>("drivers");
    fleet_.x.resize(n), fleet_.y.resize(n);
    for (PointId d = 0; d < n; ++d) draw(ctx.rng(), fleet_.x[d], fleet_.y[d]);
    if (structure_ == Structure::geohash_cell || structure_ == Structure::geohash_neighbors)
      grid_.emplace(fleet_, Geohash{p.integer<int>("geohash_chars")}, Projection{}, side_);
    if (structure_ == Structure::quadtree)
      tree_.emplace(fleet_, side_, p.integer<std::size_t>("leaf_capacity"),
                    p.integer<int>("max_depth"));
    bytes_metric_.set(static_cast<double>(index_bytes()));
  }

  void handle(const Request& r) override {
    Work w;
    if (r.op == Op::write) {
      const auto d = static_cast<PointId>(r.key % fleet_.size());
      Rng rng(Rng::hash(r.id ^ move_salt_));
      const double angle = 2 * std::numbers::pi * rng.uniform(), step = move_ * rng.uniform();
      if (relocate(d, fleet_.x[d] + step * std::cos(angle), fleet_.y[d] + step * std::sin(angle),
                   w))
        ++relocated_;
      ++updates_;
      update_work_.nodes += w.nodes;
    } else {
      Rng rng(Rng::hash(r.id ^ query_salt_));
      double qx, qy;
      draw(rng, qx, qy);
      query(qx, qy, w);
      if (Rng::uniform_at(sample_salt_, r.id, 0) < recall_sample_) check_recall(qx, qy);
      ++queries_;
      query_work_.points += w.points, query_work_.nodes += w.nodes;
    }
    points_metric_.add(static_cast<double>(w.points));
    nodes_metric_.add(static_cast<double>(w.nodes));
    const Time service = cost(w);
    (r.op == Op::write ? update_time_ : query_time_) += service;
    server_.submit(r, service);
  }

  /// rush_hour: a share of the drivers (the same ones in every variant) drive into the centre.
  void inject(const std::string&, const Value& p) override {
    const double share = p["share"].as_double();
    const std::uint64_t salt = ctx_.salt("rush hour");
    Work unused;
    for (PointId d = 0; d < fleet_.size(); ++d) {
      if (Rng::uniform_at(salt, d, 0) >= share) continue;
      Rng rng(Rng::hash(d ^ salt));
      relocate(d, centre_sigma_ / 2 * rng.normal(), centre_sigma_ / 2 * rng.normal(), unused);
    }
    bytes_metric_.set(static_cast<double>(index_bytes()));
    ctx_.log("rush hour: " + std::to_string(share * 100) + "% of the drivers head downtown");
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "geohash") {
      const Geohash hash{static_cast<int>(args["chars"].as_int())};
      return hash.text(args["lat"].as_double(), args["lon"].as_double());
    }
    if (op == "nearest") {
      Work w;
      query(args["x"].as_double(), args["y"].as_double(), w);
      List drivers;
      for (const auto& [d2, id] : found_.best())
        drivers.push_back(
            Map{{"driver", static_cast<std::int64_t>(id)}, {"metres", std::sqrt(d2)}});
      return Map{{"drivers", std::move(drivers)}, {"points", w.points}, {"nodes", w.nodes}};
    }
    Map stats{{"drivers", static_cast<std::int64_t>(fleet_.size())},  // stats
              {"index_bytes", static_cast<std::int64_t>(index_bytes())}};
    if (grid_) {
      stats["cells"] = static_cast<std::int64_t>(grid_->cells());
      stats["largest_cell"] = static_cast<std::int64_t>(grid_->largest_cell());
    }
    if (tree_) {
      stats["tree_nodes"] = static_cast<std::int64_t>(tree_->nodes());
      stats["leaves"] = static_cast<std::int64_t>(tree_->leaves());
      stats["depth"] = tree_->depth();
    }
    return stats;
  }

  Map figures() const override {
    auto per = [](double total, std::int64_t count) {
      return count > 0 ? total / static_cast<double>(count) : 0.0;
    };
    auto capacity = [&](Time total, std::int64_t count) {
      return total > 0 ? static_cast<double>(count) / to_seconds(total) : 0.0;
    };
    return {{"queries", queries_},
            {"updates", updates_},
            {"points_per_query", per(static_cast<double>(query_work_.points), queries_)},
            {"nodes_per_query", per(static_cast<double>(query_work_.nodes), queries_)},
            {"recall", checked_ > 0 ? per(recall_sum_, checked_) : 1.0},
            {"missed_share", per(static_cast<double>(missed_queries_), checked_)},
            {"nodes_per_update", per(static_cast<double>(update_work_.nodes), updates_)},
            {"relocated_share", per(static_cast<double>(relocated_), updates_)},
            {"query_capacity", capacity(query_time_, queries_)},
            {"update_capacity", capacity(update_time_, updates_)},
            {"index_bytes_per_driver",
             static_cast<double>(index_bytes()) / static_cast<double>(fleet_.size())}};
  }

  void reset_stats() override {
    queries_ = updates_ = checked_ = missed_queries_ = relocated_ = 0;
    recall_sum_ = 0;
    query_time_ = update_time_ = 0;
    query_work_ = update_work_ = Work{};
  }

 private:
  Time cost(const Work& w) const {
    return overhead_ + w.points * distance_cost_ + w.nodes * node_cost_;
  }

  /// A position from the fleet's distribution: uniform over the city, or with probability
  /// centre_share a normal around the centre (drawn again until inside the city).
  void draw(Rng& rng, double& x, double& y) const {
    const double half = side_ / 2;
    if (clustered_ && rng.chance(centre_share_)) {
      do {
        x = centre_sigma_ * rng.normal(), y = centre_sigma_ * rng.normal();
      } while (std::abs(x) >= half || std::abs(y) >= half);
      return;
    }
    x = (rng.uniform() - 0.5) * side_, y = (rng.uniform() - 0.5) * side_;
  }

  void query(double qx, double qy, Work& w) {
    switch (structure_) {
      case Structure::scan:
        found_.clear();
        for (PointId d = 0; d < fleet_.size(); ++d) found_.offer(d, fleet_.distance2(d, qx, qy));
        w.points += static_cast<std::int64_t>(fleet_.size());
        break;
      case Structure::geohash_cell:
        grid_->own_cell(qx, qy, found_, w);
        break;
      case Structure::geohash_neighbors:
        grid_->nearest(qx, qy, found_, w);
        break;
      case Structure::quadtree:
        tree_->nearest(qx, qy, found_, w);
        break;
    }
  }

  /// Recall: the share of the true k nearest (by a scan) that the answer found, counting an
  /// answer at the same distance as the k-th true one as found (ties).
  void check_recall(double qx, double qy) {
    truth_.clear();
    for (PointId d = 0; d < fleet_.size(); ++d) truth_.offer(d, fleet_.distance2(d, qx, qy));
    const double kth = truth_.best().back().first;
    std::size_t hits = 0;
    for (const auto& [d2, id] : found_.best()) hits += d2 <= kth;
    const std::size_t wanted = truth_.best().size();
    ++checked_;
    recall_sum_ += static_cast<double>(hits) / static_cast<double>(wanted);
    if (hits < wanted) {
      ++missed_queries_;
      missed_metric_.add(static_cast<double>(wanted - hits));
    }
  }

  /// Driver `d` reports a new position (kept inside the city). True when it changed cells.
  bool relocate(PointId d, double x, double y, Work& w) {
    const double edge = side_ / 2 * (1 - 1e-9);
    fleet_.x[d] = std::clamp(x, -edge, edge);
    fleet_.y[d] = std::clamp(y, -edge, edge);
    bool changed = false;
    if (structure_ == Structure::scan)
      ++w.nodes;  // two numbers overwritten in the array
    else if (grid_)
      changed = grid_->moved(d, w);
    else
      changed = tree_->moved(d, w);
    if (changed) relocations_metric_.add(1);
    return changed;
  }

  std::size_t index_bytes() const {
    if (grid_) return grid_->bytes();
    if (tree_) return tree_->bytes();
    return 0;  // the scan has no index: just the coordinates every variant keeps
  }

  Structure structure_;
  Context& ctx_;
  double side_;
  bool clustered_;
  double centre_share_, centre_sigma_, move_, recall_sample_;
  Time overhead_, distance_cost_, node_cost_;
  std::uint64_t query_salt_, move_salt_, sample_salt_;
  Points fleet_;
  std::optional<GeohashGrid> grid_;
  std::optional<QuadTree> tree_;
  KNearest found_, truth_;
  Metric& points_metric_;
  Metric& nodes_metric_;
  Metric& missed_metric_;
  Metric& relocations_metric_;
  Metric& bytes_metric_;
  Server<Request> server_;
  std::int64_t queries_ = 0, updates_ = 0, checked_ = 0, missed_queries_ = 0, relocated_ = 0;
  double recall_sum_ = 0;
  Time query_time_ = 0, update_time_ = 0;
  Work query_work_, update_work_;
};

LessonInfo info() {
  return {
      "geo_index",
      "Geo index: scanning every driver -> a geohash grid and a quadtree",
      "\"Drivers near me\" computed by measuring the distance to every driver costs the whole "
      "fleet per query. Bucketing drivers by geohash and searching only the rider's own cell is "
      "cheap but wrong: a rider near a cell edge misses the nearest drivers just across it.",
      "Search the own cell and its 8 neighbours (and further rings until the k-th driver found "
      "is nearer than the searched block's edge): exact, at the cost of a few cells. A fixed "
      "grid crowds a dense city centre into a few cells; a quadtree splits cells where drivers "
      "are dense, so a query examines about the same few drivers anywhere. Every index pays on "
      "every location update.",
      {"Redis GEOADD / GEOSEARCH (52-bit geohash in a sorted set, 9-cell neighbourhood search)",
       "Uber (geohash, then H3 hexagonal grid, for dispatch and surge)",
       "Lyft and Grab (geohash-sharded driver locations)",
       "PostGIS and Elasticsearch geo queries (R-tree / BKD-tree, geohash grids)",
       "Finkel & Bentley 1974, \"Quad trees: a data structure for retrieval on composite keys\"; "
       "Hjaltason & Samet 1999, \"Distance browsing in spatial databases\" (best-first kNN)"},
      {{"scan", true, "distance to every driver, keep the k nearest: exact, O(n)"},
       {"geohash_cell", true, "only the rider's own geohash cell: misses drivers across edges"},
       {"geohash_neighbors", false,
        "own cell + 8 neighbours, more rings while needed: exact, cells of fixed size"},
       {"quadtree", false, "point-region quadtree, best-first search: exact, adapts to density"}},
      {{"drivers", ParamType::integer, 5000, "drivers in the city", 1, 1e7},
       {"city_km", ParamType::real, 20.0, "side of the square city, km", 0.1, 20000},
       {"fleet",
        ParamType::string,
        "uniform",
        "where drivers and riders are: uniform, or clustered (a city centre)",
        -1e300,
        1e300,
        {"uniform", "clustered"}},
       {"centre_share", ParamType::real, 0.7, "clustered: share of them around the centre", 0, 1},
       {"centre_km", ParamType::real, 1.5, "clustered: standard deviation around the centre, km",
        0.001, 10000},
       {"k", ParamType::integer, 5, "drivers a query returns", 1, 1000},
       {"geohash_chars", ParamType::integer, 6,
        "geohash precision, characters (6: cells of 925 x 611 m here)", 1, 12},
       {"leaf_capacity", ParamType::integer, 8, "quadtree: drivers in a leaf before it splits", 1,
        1e6},
       {"max_depth", ParamType::integer, 24, "quadtree: deepest level", 1, 40},
       {"move_m", ParamType::real, 200.0, "a location update moves a driver up to this far, m", 0,
        1e7},
       {"recall_sample", ParamType::real, 0.25,
        "share of queries whose recall is checked against a scan (the same in every variant)", 0,
        1},
       {"distance_cost", ParamType::duration, "20ns", "time per driver examined (a distance)", 0,
        1},
       {"node_cost", ParamType::duration, "50ns",
        "time per grid cell looked up or tree node visited or written", 0, 1},
       {"request_overhead", ParamType::duration, "2us", "fixed time per request", 0, 1},
       {"workers", ParamType::integer, 4, "requests served at once", 1, 100000}},
      {{"rush_hour",
        "a share of the drivers (the same in every variant) drive into the centre at once",
        {{"share", ParamType::real, 0.5, "share of the drivers", 0, 1}}}},
      {{"nearest",
        "the k drivers nearest to (x, y) metres from the centre: drivers (driver, metres), "
        "points, nodes",
        {{"x", ParamType::real, 0.0, "metres east of the centre"},
         {"y", ParamType::real, 0.0, "metres north of the centre"}}},
       {"geohash",
        "the geohash of a latitude and longitude",
        {{"lat", ParamType::real, 40.758, "latitude", -90, 90},
         {"lon", ParamType::real, -73.9855, "longitude", -180, 180},
         {"chars", ParamType::integer, 6, "characters", 1, 12}}},
       {"stats", "drivers, index_bytes, and cells, largest_cell or tree_nodes, leaves, depth", {}}},
      {{"points_examined", MetricSpec::Kind::counter, "drivers examined (distances computed)"},
       {"nodes_visited", MetricSpec::Kind::counter, "grid cells or tree nodes visited"},
       {"missed_neighbours", MetricSpec::Kind::counter,
        "true k nearest drivers missing from sampled answers"},
       {"relocations", MetricSpec::Kind::counter, "updates that moved a driver to another cell"},
       {"index_bytes", MetricSpec::Kind::gauge, "bytes of the index"}},
      {{"queries", Unit::count, "nearest-driver queries"},
       {"updates", Unit::count, "driver location updates"},
       {"points_per_query", Unit::number, "drivers examined per query"},
       {"nodes_per_query", Unit::number, "grid cells or tree nodes visited per query"},
       {"recall", Unit::fraction, "share of the true k nearest found (sampled queries)"},
       {"missed_share", Unit::fraction, "sampled queries missing a true neighbour"},
       {"nodes_per_update", Unit::number, "records, cells or tree nodes touched per update"},
       {"relocated_share", Unit::fraction, "updates that moved a driver to another cell or leaf"},
       {"query_capacity", Unit::per_second,
        "queries per second one worker sustains (1 / mean query service time)"},
       {"update_capacity", Unit::per_second,
        "updates per second one worker sustains (1 / mean update service time)"},
       {"index_bytes_per_driver", Unit::bytes, "bytes of the index per driver"}},
      /*uses_service_time=*/false};  // the structure's work sets the time
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Structure> structures[] = {
      {"scan", Structure::scan},
      {"geohash_cell", Structure::geohash_cell},
      {"geohash_neighbors", Structure::geohash_neighbors},
      {"quadtree", Structure::quadtree}};
  return std::make_unique<GeoIndex>(variant_value(variant, structures), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
