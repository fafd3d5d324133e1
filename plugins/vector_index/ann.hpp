// Nearest-neighbour search on real vectors: a clustered synthetic data set, exact brute force,
// an inverted file (IVF: k-means lists, probe the nearest few) and HNSW (Malkov & Yashunin,
// "Efficient and robust approximate nearest neighbor search using Hierarchical Navigable Small
// World graphs", 2016/2018). Every index counts the distance computations it does: the lesson
// turns them into virtual time. Shared by the lesson, its tests and its benchmark.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab::ann {

/// No metadata filter.
constexpr std::int32_t kAnyCategory = -1;

/// Squared Euclidean distance. Eight partial sums, so the compiler can vectorise it without
/// -ffast-math.
inline float distance(const float* a, const float* b, int dim) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= dim; i += 8)
    for (int j = 0; j < 8; ++j) {
      const float d = a[i + j] - b[i + j];
      s[j] += d * d;
    }
  float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < dim; ++i) total += (a[i] - b[i]) * (a[i] - b[i]);
  return total;
}

/// A result: distance to the query and vector id, ordered by (distance, id).
struct Neighbor {
  float dist = 0;
  std::uint32_t id = 0;
  bool operator<(const Neighbor& o) const { return dist < o.dist || (dist == o.dist && id < o.id); }
  bool operator>(const Neighbor& o) const { return o < *this; }
  bool operator==(const Neighbor& o) const { return dist == o.dist && id == o.id; }
};

/// Vectors in `clusters` Gaussian clusters: centres N(0, 1) per coordinate, points centre +
/// N(0, spread^2) per coordinate; each vector has a metadata category, uniform and independent
/// of its cluster.
struct Dataset {
  int dim = 0;
  std::size_t size = 0;
  std::vector<float> vectors;             // size * dim
  std::vector<float> centers;             // clusters * dim
  std::vector<std::uint16_t> categories;  // per vector
  int clusters = 0, category_count = 1;
  double spread = 0;

  const float* at(std::size_t i) const {
    return vectors.data() + i * static_cast<std::size_t>(dim);
  }

  static Dataset clustered(std::size_t n, int dim, int clusters, double spread, int categories,
                           Rng& rng) {
    if (n == 0 || dim <= 0 || clusters <= 0 || categories <= 0)
      throw std::invalid_argument("a data set needs vectors, dimensions, clusters, categories");
    Dataset d;
    d.dim = dim;
    d.size = n;
    d.clusters = clusters;
    d.category_count = categories;
    d.spread = spread;
    d.centers.resize(static_cast<std::size_t>(clusters) * dim);
    for (float& c : d.centers) c = static_cast<float>(rng.normal());
    d.vectors.resize(n * static_cast<std::size_t>(dim));
    d.categories.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      d.point_near(rng, rng.below(static_cast<std::uint64_t>(clusters)),
                   d.vectors.data() + i * dim);
      d.categories[i] =
          static_cast<std::uint16_t>(rng.below(static_cast<std::uint64_t>(categories)));
    }
    return d;
  }
  /// A fresh point of cluster `c` (a query is drawn like the data).
  void point_near(Rng& rng, std::uint64_t c, float* out) const {
    const float* center = centers.data() + c * static_cast<std::uint64_t>(dim);
    for (int j = 0; j < dim; ++j) out[j] = center[j] + static_cast<float>(spread * rng.normal());
  }
  bool matches(std::uint32_t id, std::int32_t category) const {
    return category == kAnyCategory || categories[id] == category;
  }
};

/// The k smallest of the candidates kept so far (a max-heap on distance).
class TopK {
 public:
  void reset(std::size_t k) {
    k_ = k;
    heap_.clear();
  }
  bool full() const { return heap_.size() >= k_; }
  float worst() const {
    return heap_.empty() ? std::numeric_limits<float>::infinity() : heap_.front().dist;
  }
  void offer(Neighbor n) {
    if (k_ == 0) return;
    if (!full()) {
      heap_.push_back(n);
      std::push_heap(heap_.begin(), heap_.end());
    } else if (n < heap_.front()) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = n;
      std::push_heap(heap_.begin(), heap_.end());
    }
  }
  /// The kept neighbours, nearest first.
  void sorted(std::vector<Neighbor>& out) {
    out.assign(heap_.begin(), heap_.end());
    std::sort(out.begin(), out.end());
  }

 private:
  std::size_t k_ = 0;
  std::vector<Neighbor> heap_;
};

/// Exact k nearest neighbours by scanning every vector: N distance computations per query.
inline void brute_force(const Dataset& data, const float* q, std::size_t k, std::int32_t category,
                        TopK& top, std::vector<Neighbor>& out, std::uint64_t& distances) {
  top.reset(k);
  for (std::uint32_t i = 0; i < data.size; ++i) {
    if (!data.matches(i, category)) continue;  // the metadata check costs no distance
    ++distances;
    top.offer({distance(q, data.at(i), data.dim), i});
  }
  top.sorted(out);
}

/// Fraction of `truth` found in `found` (recall@k with k = truth.size()); 1 when truth is empty.
inline double recall(const std::vector<Neighbor>& truth, const std::vector<Neighbor>& found) {
  if (truth.empty()) return 1;
  std::size_t hits = 0;
  for (const Neighbor& t : truth)
    for (const Neighbor& f : found)
      if (f.id == t.id) {
        ++hits;
        break;
      }
  return static_cast<double>(hits) / static_cast<double>(truth.size());
}

/// @brief Inverted file: k-means (Lloyd) partitions the vectors into `nlist` lists around
/// centroids; a query scans the lists of its `nprobe` nearest centroids.
/// Cost per query: nlist + (vectors in the probed lists) distance computations.
class Ivf {
 public:
  void build(const Dataset& data, int nlist, int iterations, Rng& rng) {
    if (nlist <= 0 || static_cast<std::size_t>(nlist) > data.size)
      throw std::invalid_argument("IVF needs 1 <= nlist <= vectors");
    data_ = &data;
    nlist_ = nlist;
    const int dim = data.dim;
    build_distances_ = 0;
    // Initial centroids: nlist distinct vectors chosen at random (partial Fisher-Yates).
    std::vector<std::uint32_t> order(data.size);
    for (std::uint32_t i = 0; i < data.size; ++i) order[i] = i;
    centroids_.assign(static_cast<std::size_t>(nlist) * dim, 0);
    for (int c = 0; c < nlist; ++c) {
      const std::size_t j = c + rng.below(data.size - c);
      std::swap(order[c], order[j]);
      std::copy_n(data.at(order[c]), dim, centroids_.begin() + static_cast<std::size_t>(c) * dim);
    }
    std::vector<std::uint32_t> assign(data.size, 0);
    for (int it = 0; it <= iterations; ++it) {
      for (std::uint32_t i = 0; i < data.size; ++i) assign[i] = nearest_centroid(data.at(i));
      if (it == iterations) break;
      // Update: each centroid moves to the mean of its vectors (an empty one stays).
      std::vector<double> sums(centroids_.size(), 0);
      std::vector<std::size_t> counts(static_cast<std::size_t>(nlist), 0);
      for (std::uint32_t i = 0; i < data.size; ++i) {
        ++counts[assign[i]];
        for (int j = 0; j < dim; ++j)
          sums[assign[i] * static_cast<std::size_t>(dim) + j] += data.at(i)[j];
      }
      for (int c = 0; c < nlist; ++c)
        if (counts[c] > 0)
          for (int j = 0; j < dim; ++j)
            centroids_[static_cast<std::size_t>(c) * dim + j] =
                static_cast<float>(sums[static_cast<std::size_t>(c) * dim + j] / counts[c]);
    }
    lists_.assign(static_cast<std::size_t>(nlist), {});
    for (std::uint32_t i = 0; i < data.size; ++i) lists_[assign[i]].push_back(i);
  }

  void search(const float* q, std::size_t k, int nprobe, std::int32_t category, TopK& top,
              std::vector<Neighbor>& out, std::uint64_t& distances) {
    probe_.reset(static_cast<std::size_t>(std::min(nprobe, nlist_)));
    for (int c = 0; c < nlist_; ++c)
      probe_.offer({distance(q, centroid(c), data_->dim), static_cast<std::uint32_t>(c)});
    distances += static_cast<std::uint64_t>(nlist_);
    probe_.sorted(probed_);
    top.reset(k);
    for (const Neighbor& c : probed_)
      for (std::uint32_t id : lists_[c.id]) {
        if (!data_->matches(id, category)) continue;  // filtered while scanning
        ++distances;
        top.offer({distance(q, data_->at(id), data_->dim), id});
      }
    top.sorted(out);
  }

  std::uint64_t build_distances() const { return build_distances_; }
  /// Bytes beyond the raw vectors: one id per vector in its list, the centroids.
  double index_bytes() const {
    return static_cast<double>(data_->size * sizeof(std::uint32_t) +
                               centroids_.size() * sizeof(float));
  }
  const std::vector<std::vector<std::uint32_t>>& lists() const { return lists_; }
  int nlist() const { return nlist_; }

 private:
  const float* centroid(int c) const {
    return centroids_.data() + static_cast<std::size_t>(c) * data_->dim;
  }
  std::uint32_t nearest_centroid(const float* v) {
    std::uint32_t best = 0;
    float best_d = std::numeric_limits<float>::infinity();
    for (int c = 0; c < nlist_; ++c) {
      const float d = distance(v, centroid(c), data_->dim);
      if (d < best_d) best_d = d, best = static_cast<std::uint32_t>(c);
    }
    build_distances_ += static_cast<std::uint64_t>(nlist_);
    return best;
  }

  const Dataset* data_ = nullptr;
  int nlist_ = 0;
  std::vector<float> centroids_;
  std::vector<std::vector<std::uint32_t>> lists_;
  std::uint64_t build_distances_ = 0;
  TopK probe_;
  std::vector<Neighbor> probed_;
};

/// @brief Hierarchical navigable small world graph. Each vector gets a level
/// floor(-ln(U) / ln(M)); it has up to M links on each level above 0 and 2M on level 0. A query
/// walks greedily from the top entry point down to level 1, then keeps the ef best candidates
/// on level 0 (beam search). Neighbours are chosen by the paper's heuristic (Algorithm 4: keep a
/// candidate only if it is closer to the new vector than to every neighbour kept so far).
class Hnsw {
 public:
  /// How a metadata filter is applied: while walking the graph (only matching vectors enter
  /// the result beam, every vector is still walked through), or after an unfiltered search.
  enum class Filter { during_search, after_search };

  void build(const Dataset& data, int m, int ef_construction, Rng& rng) {
    if (m < 2) throw std::invalid_argument("HNSW needs M >= 2");
    data_ = &data;
    m_ = m;
    ef_construction_ = std::max(ef_construction, m);
    level_mult_ = 1 / std::log(static_cast<double>(m));
    links_.assign(data.size, {});
    levels_.assign(data.size, 0);
    visited_.assign(data.size, 0);
    epoch_ = 0;
    entry_ = 0;
    top_level_ = -1;
    build_distances_ = 0;
    for (std::uint32_t i = 0; i < data.size; ++i) insert(i, rng);
  }

  /// The k nearest (matching `category`) with a beam of `ef` (at least k) on level 0.
  void search(const float* q, std::size_t k, int ef, std::int32_t category, Filter filter,
              std::vector<Neighbor>& out, std::uint64_t& distances) {
    const std::size_t beam = std::max<std::size_t>(k, static_cast<std::size_t>(ef));
    std::uint32_t ep = entry_;
    float ep_d = dist(q, ep, distances);
    for (int level = top_level_; level > 0; --level) greedy(q, level, ep, ep_d, distances);
    const std::int32_t during = filter == Filter::during_search ? category : kAnyCategory;
    search_layer(q, ep, ep_d, beam, 0, during, distances);
    out.clear();
    for (const Neighbor& n : result_)
      if (data_->matches(n.id, category) && out.size() < k) out.push_back(n);
  }

  std::uint64_t build_distances() const { return build_distances_; }
  /// Bytes beyond the raw vectors: the links (4 bytes each, at their capacity: 2M on level 0,
  /// M above) plus a level byte and a count per list.
  double index_bytes() const {
    double bytes = 0;
    for (std::uint32_t i = 0; i < data_->size; ++i)
      bytes += 1 + (2.0 * m_ + 1) * 4 + levels_[i] * (m_ + 1.0) * 4;
    return bytes;
  }
  int top_level() const { return top_level_; }
  int level(std::uint32_t id) const { return levels_[id]; }
  const std::vector<std::uint32_t>& neighbors(std::uint32_t id, int level) const {
    return links_[id][static_cast<std::size_t>(level)];
  }
  std::size_t max_links(int level) const {
    return static_cast<std::size_t>(level == 0 ? 2 * m_ : m_);
  }

 private:
  float dist(const float* q, std::uint32_t id, std::uint64_t& distances) const {
    ++distances;
    return distance(q, data_->at(id), data_->dim);
  }

  void insert(std::uint32_t id, Rng& rng) {
    const int level = static_cast<int>(std::floor(-std::log(rng.uniform_open()) * level_mult_));
    levels_[id] = level;
    links_[id].assign(static_cast<std::size_t>(level) + 1, {});
    if (top_level_ < 0) {
      entry_ = id;
      top_level_ = level;
      return;
    }
    const float* v = data_->at(id);
    std::uint32_t ep = entry_;
    float ep_d = dist(v, ep, build_distances_);
    for (int l = top_level_; l > level; --l) greedy(v, l, ep, ep_d, build_distances_);
    for (int l = std::min(level, top_level_); l >= 0; --l) {
      search_layer(v, ep, ep_d, static_cast<std::size_t>(ef_construction_), l, kAnyCategory,
                   build_distances_);
      ep = result_.front().id;  // the nearest found is the next level's entry
      ep_d = result_.front().dist;
      select_neighbors(result_, static_cast<std::size_t>(m_), selected_);
      links_[id][static_cast<std::size_t>(l)].clear();
      for (const Neighbor& n : selected_) {
        links_[id][static_cast<std::size_t>(l)].push_back(n.id);
        connect(n.id, id, n.dist, l);
      }
    }
    if (level > top_level_) {
      top_level_ = level;
      entry_ = id;
    }
  }

  /// Add the link from -> to on `level`; a list over its capacity keeps the heuristic's choice.
  void connect(std::uint32_t from, std::uint32_t to, float d, int level) {
    std::vector<std::uint32_t>& list = links_[from][static_cast<std::size_t>(level)];
    if (list.size() < max_links(level)) {
      list.push_back(to);
      return;
    }
    shrink_.clear();
    shrink_.push_back({d, to});
    for (std::uint32_t n : list)
      shrink_.push_back({distance(data_->at(from), data_->at(n), data_->dim), n});
    build_distances_ += list.size();
    std::sort(shrink_.begin(), shrink_.end());
    select_neighbors(shrink_, max_links(level), kept_);
    list.clear();
    for (const Neighbor& n : kept_) list.push_back(n.id);
  }

  /// Algorithm 4 of the paper (without extending candidates, keeping pruned ones to fill up):
  /// `candidates` sorted nearest first.
  void select_neighbors(const std::vector<Neighbor>& candidates, std::size_t m,
                        std::vector<Neighbor>& out) {
    out.clear();
    pruned_.clear();
    for (const Neighbor& c : candidates) {
      if (out.size() >= m) break;
      bool good = true;
      for (const Neighbor& kept : out) {
        ++build_distances_;
        if (distance(data_->at(c.id), data_->at(kept.id), data_->dim) < c.dist) {
          good = false;
          break;
        }
      }
      (good ? out : pruned_).push_back(c);
    }
    for (const Neighbor& p : pruned_) {
      if (out.size() >= m) break;
      out.push_back(p);
    }
  }

  /// Greedy walk on `level`: move to a closer neighbour while there is one.
  void greedy(const float* q, int level, std::uint32_t& ep, float& ep_d, std::uint64_t& distances) {
    for (bool moved = true; moved;) {
      moved = false;
      for (std::uint32_t n : links_[ep][static_cast<std::size_t>(level)]) {
        const float d = dist(q, n, distances);
        if (d < ep_d) ep_d = d, ep = n, moved = true;
      }
    }
  }

  /// Beam search on `level` from `ep`: result_ gets the `ef` nearest found (matching
  /// `category`), nearest first. Candidates are explored nearest first and the search stops
  /// when the nearest unexplored one is farther than the worst of a full result beam.
  void search_layer(const float* q, std::uint32_t ep, float ep_d, std::size_t ef, int level,
                    std::int32_t category, std::uint64_t& distances) {
    if (++epoch_ == 0) {
      std::fill(visited_.begin(), visited_.end(), 0);
      epoch_ = 1;
    }
    candidates_.clear();  // a min-heap on distance
    beam_.reset(ef);
    visited_[ep] = epoch_;
    push_candidate({ep_d, ep});
    if (data_->matches(ep, category)) beam_.offer({ep_d, ep});
    while (!candidates_.empty()) {
      const Neighbor c = candidates_.front();
      if (beam_.full() && c.dist > beam_.worst()) break;
      std::pop_heap(candidates_.begin(), candidates_.end(), std::greater<Neighbor>());
      candidates_.pop_back();
      for (std::uint32_t n : links_[c.id][static_cast<std::size_t>(level)]) {
        if (visited_[n] == epoch_) continue;
        visited_[n] = epoch_;
        const float d = dist(q, n, distances);
        if (beam_.full() && d >= beam_.worst()) continue;
        push_candidate({d, n});
        if (data_->matches(n, category)) beam_.offer({d, n});
      }
    }
    beam_.sorted(result_);
  }

  void push_candidate(Neighbor n) {
    candidates_.push_back(n);
    std::push_heap(candidates_.begin(), candidates_.end(), std::greater<Neighbor>());
  }

  const Dataset* data_ = nullptr;
  int m_ = 0, ef_construction_ = 0, top_level_ = -1;
  double level_mult_ = 0;
  std::uint32_t entry_ = 0;
  std::vector<std::vector<std::vector<std::uint32_t>>> links_;  // [vector][level] -> ids
  std::vector<int> levels_;
  std::uint64_t build_distances_ = 0;
  // Search scratch, reused (no allocation per query once grown).
  std::vector<std::uint32_t> visited_;
  std::uint32_t epoch_ = 0;
  TopK beam_;
  std::vector<Neighbor> candidates_, result_, selected_, pruned_, shrink_, kept_;
};

}  // namespace hldlab::ann
