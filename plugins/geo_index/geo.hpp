// Nearest-k search over moving points (drivers in a city): a geohash grid and a point-region
// quadtree, and the geohash encoding itself.
//
// Points live in a square city of side `side` metres centred on (0, 0): x east, y north. The
// geohash works on latitude and longitude, as everywhere: a point's local metres convert to
// degrees around the city's centre (equirectangular, exact for the distances used here).
//
// Work is counted, not timed: points examined (a distance computed) and nodes visited (a grid
// cell looked up, a tree node expanded).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hldlab::geo {

using PointId = std::uint32_t;

struct Work {
  std::int64_t points = 0;  // distances computed
  std::int64_t nodes = 0;   // cells looked up, tree nodes visited or written
};

/// The points' coordinates, by id, in metres.
struct Points {
  std::vector<double> x, y;
  std::size_t size() const { return x.size(); }
  double distance2(PointId p, double qx, double qy) const {
    const double dx = x[p] - qx, dy = y[p] - qy;
    return dx * dx + dy * dy;
  }
};

/// The k nearest points offered so far, nearest first (k is small: an insertion list).
class KNearest {
 public:
  explicit KNearest(std::size_t k) : k_(k) { best_.reserve(k + 1); }
  void clear() { best_.clear(); }
  void offer(PointId p, double d2) {
    if (best_.size() == k_ && !(d2 < best_.back().first)) return;
    auto at = std::upper_bound(best_.begin(), best_.end(), std::make_pair(d2, p));
    best_.insert(at, {d2, p});
    if (best_.size() > k_) best_.pop_back();
  }
  bool full() const { return best_.size() == k_; }
  /// Squared distance of the k-th nearest (infinite until k were offered).
  double bound2() const {
    return full() ? best_.back().first : std::numeric_limits<double>::infinity();
  }
  const std::vector<std::pair<double, PointId>>& best() const { return best_; }
  std::size_t k() const { return k_; }

 private:
  std::size_t k_;
  std::vector<std::pair<double, PointId>> best_;
};

// ---- geohash ------------------------------------------------------------------------------

/// Degrees per metre around a latitude (WGS84 mean radius, equirectangular).
struct Projection {
  double lat0 = 40.7580, lon0 = -73.9855;                // the city centre (Times Square)
  static constexpr double kMetresPerDegree = 111195.08;  // 6 371 km x pi / 180
  double lat(double y) const { return lat0 + y / kMetresPerDegree; }
  double lon(double x) const {
    return lon0 + x / (kMetresPerDegree * std::cos(lat0 * std::numbers::pi / 180));
  }
  double y(double lat) const { return (lat - lat0) * kMetresPerDegree; }
  double x(double lon) const {
    return (lon - lon0) * kMetresPerDegree * std::cos(lat0 * std::numbers::pi / 180);
  }
};

/// A geohash of `chars` characters: 5 bits each, alternating longitude (first) and latitude,
/// each bit halving the interval. Longitude gets ceil(5 chars / 2) bits, latitude the rest.
struct Geohash {
  int chars = 6;
  int lon_bits() const { return (5 * chars + 1) / 2; }
  int lat_bits() const { return 5 * chars / 2; }
  /// Cell column (longitude) and row (latitude) of a point.
  std::int64_t column(double lon) const {
    return static_cast<std::int64_t>(std::floor((lon + 180) / 360 * std::ldexp(1.0, lon_bits())));
  }
  std::int64_t row(double lat) const {
    return static_cast<std::int64_t>(std::floor((lat + 90) / 180 * std::ldexp(1.0, lat_bits())));
  }
  double column_west(std::int64_t c) const {
    return -180 + 360 * std::ldexp(static_cast<double>(c), -lon_bits());
  }
  double row_south(std::int64_t r) const {
    return -90 + 180 * std::ldexp(static_cast<double>(r), -lat_bits());
  }
  /// The geohash as an integer: the bits of column and row interleaved, longitude first.
  std::uint64_t cell(std::int64_t column, std::int64_t row) const {
    std::uint64_t code = 0;
    for (int b = 0; b < 5 * chars; ++b) {
      const bool lon = b % 2 == 0;
      const int bits = lon ? lon_bits() : lat_bits();
      const auto value = static_cast<std::uint64_t>(lon ? column : row);
      code = (code << 1) | ((value >> (bits - 1 - b / 2)) & 1);
    }
    return code;
  }
  /// The usual base-32 text ("dr5ru7" is Times Square at 6 characters).
  std::string text(double lat, double lon) const {
    static const char kBase32[] = "0123456789bcdefghjkmnpqrstuvwxyz";
    const std::uint64_t code = cell(column(lon), row(lat));
    std::string out;
    for (int c = chars - 1; c >= 0; --c) out += kBase32[(code >> (5 * c)) & 31];
    return out;
  }
};

/// A hash map from geohash cell to the points in it (Redis GEO and most "drivers near me"
/// services bucket points by geohash; Redis keeps the 52-bit code in a sorted set instead).
class GeohashGrid {
 public:
  GeohashGrid(const Points& points, Geohash hash, Projection proj, double side)
      : points_(points), hash_(hash), proj_(proj), half_(side / 2) {
    cell_of_.resize(points.size());
    slot_.resize(points.size());
    for (PointId p = 0; p < points.size(); ++p) add(p, locate(p));
  }

  struct Cell {
    std::int64_t column, row;
  };
  Cell locate(double x, double y) const {
    return {hash_.column(proj_.lon(x)), hash_.row(proj_.lat(y))};
  }
  Cell locate(PointId p) const { return locate(points_.x[p], points_.y[p]); }

  /// The points of the query's own cell only: fast, and blind across the cell's edges.
  void own_cell(double qx, double qy, KNearest& out, Work& w) const {
    out.clear();
    const Cell c = locate(qx, qy);
    search_cell(c.column, c.row, qx, qy, out, w);
  }

  /// The own cell and its 8 neighbours, then further rings of cells while the k-th nearest
  /// found could be beaten by a point outside the searched block: exact.
  void nearest(double qx, double qy, KNearest& out, Work& w) const {
    out.clear();
    const Cell c = locate(qx, qy);
    for (std::int64_t ring = 0;; ++ring) {
      for (std::int64_t dc = -ring; dc <= ring; ++dc)
        for (std::int64_t dr = -ring; dr <= ring; ++dr)
          if (std::max(std::abs(dc), std::abs(dr)) == ring)
            search_cell(c.column + dc, c.row + dr, qx, qy, out, w);
      if (ring == 0) continue;  // always the 3 x 3 block
      // Edges of the searched block, in metres.
      const double west = proj_.x(hash_.column_west(c.column - ring));
      const double east = proj_.x(hash_.column_west(c.column + ring + 1));
      const double south = proj_.y(hash_.row_south(c.row - ring));
      const double north = proj_.y(hash_.row_south(c.row + ring + 1));
      if (west <= -half_ && east >= half_ && south <= -half_ && north >= half_) return;  // all
      const double margin = std::min({qx - west, east - qx, qy - south, north - qy});
      if (out.full() && out.bound2() <= margin * margin) return;
    }
  }

  /// Point `p` moved (its coordinates are already updated): change its cell if it left it.
  /// Returns true when it changed cells.
  bool moved(PointId p, Work& w) {
    const Cell c = locate(p);
    const std::uint64_t code = hash_.cell(c.column, c.row);
    ++w.nodes;  // the point's record
    if (code == cell_of_[p]) return false;
    remove(p, w);
    add(p, c);
    ++w.nodes;
    return true;
  }

  std::size_t cells() const { return cells_.size(); }
  std::size_t largest_cell() const {
    std::size_t most = 0;
    for (const auto& [code, ids] : cells_) most = std::max(most, ids.size());
    return most;
  }
  /// Bytes of the index (beyond the points' coordinates): the hash table's bucket array, one
  /// node per cell (next pointer, cached hash, key, vector header), 4 bytes per point id in
  /// the cells, and per point its cell code and slot.
  std::size_t bytes() const {
    std::size_t ids = 0;
    for (const auto& [code, cell] : cells_) ids += cell.capacity();
    return cells_.bucket_count() * sizeof(void*) +
           cells_.size() *
               (2 * sizeof(void*) + sizeof(std::uint64_t) + sizeof(std::vector<PointId>)) +
           ids * sizeof(PointId) + points_.size() * (sizeof(std::uint64_t) + sizeof(std::uint32_t));
  }

 private:
  void search_cell(std::int64_t column, std::int64_t row, double qx, double qy, KNearest& out,
                   Work& w) const {
    ++w.nodes;
    const auto it = cells_.find(hash_.cell(column, row));
    if (it == cells_.end()) return;
    for (PointId p : it->second) {
      ++w.points;
      out.offer(p, points_.distance2(p, qx, qy));
    }
  }
  void add(PointId p, Cell c) {
    const std::uint64_t code = hash_.cell(c.column, c.row);
    auto& ids = cells_[code];
    cell_of_[p] = code;
    slot_[p] = static_cast<std::uint32_t>(ids.size());
    ids.push_back(p);
  }
  void remove(PointId p, Work& w) {
    auto& ids = cells_[cell_of_[p]];
    ++w.nodes;
    const PointId last = ids.back();
    ids[slot_[p]] = last;
    slot_[last] = slot_[p];
    ids.pop_back();
  }

  const Points& points_;
  Geohash hash_;
  Projection proj_;
  double half_;
  std::unordered_map<std::uint64_t, std::vector<PointId>> cells_;
  std::vector<std::uint64_t> cell_of_;  // by point
  std::vector<std::uint32_t> slot_;     // by point: its index in its cell's vector
};

/// A point-region quadtree over the city square: a leaf holds up to `capacity` points and
/// splits into four quadrants when one more arrives (down to `max_depth`); four sibling
/// leaves holding at most capacity / 2 points together merge back. Dense areas get small
/// cells, empty ones big cells: it adapts to density.
class QuadTree {
 public:
  QuadTree(const Points& points, double side, std::size_t capacity, int max_depth)
      : points_(points), capacity_(capacity), max_depth_(max_depth) {
    nodes_.push_back(Node{-side / 2, -side / 2, side, 0, -1, -1, {}});
    leaf_of_.resize(points.size());
    slot_.resize(points.size());
    Work unused;
    for (PointId p = 0; p < points.size(); ++p) insert(p, unused);
  }

  /// Best-first search: expand the node nearest to the query first; stop when the nearest
  /// unexpanded node is farther than the k-th nearest point found. Exact.
  void nearest(double qx, double qy, KNearest& out, Work& w) {
    out.clear();
    queue_.clear();
    queue_.push_back({0, 0});
    while (!queue_.empty()) {
      std::pop_heap(queue_.begin(), queue_.end(), std::greater<>());
      const auto [d2, index] = queue_.back();
      queue_.pop_back();
      if (d2 > out.bound2()) break;
      ++w.nodes;
      const Node& n = nodes_[static_cast<std::size_t>(index)];
      if (n.child < 0) {
        for (PointId p : n.points) {
          ++w.points;
          out.offer(p, points_.distance2(p, qx, qy));
        }
        continue;
      }
      for (int q = 0; q < 4; ++q) {
        const std::int32_t c = n.child + q;
        const Node& child = nodes_[static_cast<std::size_t>(c)];
        if (child.child < 0 && child.points.empty()) continue;
        queue_.push_back({box_distance2(child, qx, qy), c});
        std::push_heap(queue_.begin(), queue_.end(), std::greater<>());
      }
    }
  }

  /// Point `p` moved (its coordinates are already updated). Returns true when it changed
  /// leaves: removed from the old one (maybe merging it with its siblings), inserted from the
  /// root down (maybe splitting the new one).
  bool moved(PointId p, Work& w) {
    const Node& leaf = nodes_[static_cast<std::size_t>(leaf_of_[p])];
    ++w.nodes;
    if (inside(leaf, points_.x[p], points_.y[p])) return false;
    remove(p, w);
    insert(p, w);
    return true;
  }

  std::size_t nodes() const { return nodes_.size() - 4 * free_.size(); }
  std::size_t leaves() const {
    std::size_t count = 0;
    for_each_live([&](const Node& n) { count += n.child < 0; });
    return count;
  }
  int depth() const {
    int most = 0;
    for_each_live([&](const Node& n) { most = std::max(most, n.depth); });
    return most;
  }
  /// Bytes of the index: the live nodes (box, links, point-vector header), 4 bytes per point
  /// id in the leaves (capacity), and per point its leaf and slot.
  std::size_t bytes() const {
    std::size_t ids = 0, live = 0;
    for_each_live([&](const Node& n) { ids += n.points.capacity(), ++live; });
    return live * sizeof(Node) + ids * sizeof(PointId) + points_.size() * 2 * sizeof(std::uint32_t);
  }

 private:
  struct Node {
    double x0, y0, size;  // the square [x0, x0 + size) x [y0, y0 + size)
    int depth;
    std::int32_t parent;
    std::int32_t child;  // the first of four consecutive children; -1: a leaf
    std::vector<PointId> points;
  };

  template <class F>
  void for_each_live(F&& f) const {
    // Freed blocks are marked by a negative size.
    for (const Node& n : nodes_)
      if (n.size > 0) f(n);
  }
  static bool inside(const Node& n, double x, double y) {
    return x >= n.x0 && x < n.x0 + n.size && y >= n.y0 && y < n.y0 + n.size;
  }
  static double box_distance2(const Node& n, double x, double y) {
    const double dx = std::max({n.x0 - x, 0.0, x - (n.x0 + n.size)});
    const double dy = std::max({n.y0 - y, 0.0, y - (n.y0 + n.size)});
    return dx * dx + dy * dy;
  }
  static int quadrant(const Node& n, double x, double y) {
    const double half = n.size / 2;
    return (x >= n.x0 + half ? 1 : 0) + (y >= n.y0 + half ? 2 : 0);
  }

  void insert(PointId p, Work& w) {
    std::int32_t index = 0;
    ++w.nodes;
    while (nodes_[static_cast<std::size_t>(index)].child >= 0) {
      const Node& n = nodes_[static_cast<std::size_t>(index)];
      index = n.child + quadrant(n, points_.x[p], points_.y[p]);
      ++w.nodes;
    }
    place(p, index);
    Node& leaf = nodes_[static_cast<std::size_t>(index)];
    if (leaf.points.size() > capacity_ && leaf.depth < max_depth_) split(index, w);
  }
  void place(PointId p, std::int32_t leaf) {
    auto& ids = nodes_[static_cast<std::size_t>(leaf)].points;
    leaf_of_[p] = leaf;
    slot_[p] = static_cast<std::uint32_t>(ids.size());
    ids.push_back(p);
  }
  void split(std::int32_t index, Work& w) {
    const std::int32_t first = allocate_block();
    Node& n = nodes_[static_cast<std::size_t>(index)];
    const double half = n.size / 2;
    for (int q = 0; q < 4; ++q) {
      Node& c = nodes_[static_cast<std::size_t>(first + q)];
      c.x0 = n.x0 + (q & 1 ? half : 0);
      c.y0 = n.y0 + (q & 2 ? half : 0);
      c.size = half;
      c.depth = n.depth + 1;
      c.parent = index;
      c.child = -1;
      c.points.clear();
    }
    n.child = first;
    std::vector<PointId> moving;
    moving.swap(n.points);
    for (PointId p : moving) place(p, first + quadrant(n, points_.x[p], points_.y[p]));
    w.nodes += 4;
    for (int q = 0; q < 4; ++q) {
      const Node& c = nodes_[static_cast<std::size_t>(first + q)];
      if (c.points.size() > capacity_ && c.depth < max_depth_) split(first + q, w);
    }
  }
  void remove(PointId p, Work& w) {
    const std::int32_t leaf = leaf_of_[p];
    auto& ids = nodes_[static_cast<std::size_t>(leaf)].points;
    const PointId last = ids.back();
    ids[slot_[p]] = last;
    slot_[last] = slot_[p];
    ids.pop_back();
    merge_up(nodes_[static_cast<std::size_t>(leaf)].parent, w);
  }
  /// Collapse `index`'s four children into it while they are leaves holding together at most
  /// capacity / 2 points (half, so a point going back and forth does not split and merge).
  void merge_up(std::int32_t index, Work& w) {
    while (index >= 0) {
      Node& n = nodes_[static_cast<std::size_t>(index)];
      std::size_t total = 0;
      for (int q = 0; q < 4; ++q) {
        const Node& c = nodes_[static_cast<std::size_t>(n.child + q)];
        if (c.child >= 0) return;
        total += c.points.size();
      }
      if (total > capacity_ / 2) return;
      const std::int32_t first = n.child;
      n.child = -1;
      for (int q = 0; q < 4; ++q) {
        Node& c = nodes_[static_cast<std::size_t>(first + q)];
        for (PointId p : c.points) place(p, index);
        c.points.clear();
        c.size = -1;  // freed
      }
      free_.push_back(first);
      w.nodes += 4;
      index = nodes_[static_cast<std::size_t>(index)].parent;
    }
  }
  std::int32_t allocate_block() {
    if (!free_.empty()) {
      const std::int32_t first = free_.back();
      free_.pop_back();
      return first;
    }
    const auto first = static_cast<std::int32_t>(nodes_.size());
    nodes_.resize(nodes_.size() + 4);
    return first;
  }

  const Points& points_;
  std::size_t capacity_;
  int max_depth_;
  std::vector<Node> nodes_;         // 0 is the root; children come in blocks of four
  std::vector<std::int32_t> free_;  // first node of each freed block
  std::vector<std::int32_t> leaf_of_;
  std::vector<std::uint32_t> slot_;
  std::vector<std::pair<double, std::int32_t>> queue_;  // scratch for nearest
};

}  // namespace hldlab::geo
