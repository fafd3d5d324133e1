// Synthetic prompt embeddings and a semantic cache on real vectors: cosine similarity, a
// brute-force nearest-entry lookup that counts its comparisons, LRU eviction. Shared by the
// lesson and its tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "hldlab/sim.hpp"

namespace hldlab::semantic {

/// Cosine similarity of two vectors of `dim` floats (0 when either is zero).
inline double cosine(const float* a, const float* b, int dim) {
  double dot = 0, na = 0, nb = 0;
  for (int i = 0; i < dim; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0.0;
}

/// Dot product in float with eight partial sums (vectorisable without -ffast-math).
inline float dot(const float* a, const float* b, int dim) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= dim; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < dim; ++i) total += a[i] * b[i];
  return total;
}

/// Scale `v` to unit length.
inline void normalize(float* v, int dim) {
  double n = 0;
  for (int i = 0; i < dim; ++i) n += static_cast<double>(v[i]) * v[i];
  const double scale = n > 0 ? 1 / std::sqrt(n) : 0;
  for (int i = 0; i < dim; ++i) v[i] = static_cast<float>(v[i] * scale);
}

/// @brief The synthetic prompt space. Questions come in families of `family_size` distinct
/// questions that are near each other ("capital of France?", "capital of Spain?"); each
/// question has `paraphrases` wordings. Unit vectors, every one a deterministic function of
/// (salt, ids), so the same wording always embeds to the same vector:
///   family   F = a random unit vector
///   question c = sqrt(rho) F + sqrt(1 - rho) G, G a random unit vector orthogonal to F and to
///               the G of the family's other questions: two questions of a family have cosine
///               exactly rho (rho_short for a family of short prompts, which differ by a word;
///               rho_long otherwise)
///   wording  p = sqrt(tau) c + sqrt(1 - tau) H, H a random unit vector orthogonal to c: two
///               wordings of one question have cosine tau + (1 - tau) H.H' = tau +- (1 -
///               tau) / sqrt(dim); of sibling questions ~ tau rho; unrelated ~ 0 +- 1/sqrt(dim).
class PromptSpace {
 public:
  PromptSpace(int dim, int family_size, double tau, double rho_short, double rho_long,
              double short_share, std::uint64_t salt)
      : dim_(dim),
        family_size_(family_size),
        tau_(tau),
        rho_short_(rho_short),
        rho_long_(rho_long),
        short_share_(short_share),
        salt_(salt),
        basis_(static_cast<std::size_t>(family_size + 1) * static_cast<std::size_t>(dim)),
        noise_(static_cast<std::size_t>(dim)) {
    if (dim <= family_size + 1 || family_size <= 0)
      throw std::invalid_argument("a prompt space needs dim > family_size + 1");
  }
  int dim() const { return dim_; }
  std::uint64_t family(std::uint64_t question) const {
    return question / static_cast<std::uint64_t>(family_size_);
  }
  /// Is `question` a short prompt? (Decided per family: its questions differ by a word.)
  bool is_short(std::uint64_t question) const {
    return Rng::uniform_at(salt_, family(question), Rng::hash_name("short")) < short_share_;
  }
  /// The embedding of wording `paraphrase` of `question`, into `out` (dim floats).
  void embed(std::uint64_t question, std::uint64_t paraphrase, float* out) {
    const std::uint64_t f = family(question);
    const int k = static_cast<int>(question % static_cast<std::uint64_t>(family_size_));
    // basis_ rows: F, then G_0 .. G_k, each orthogonal to the rows before it.
    for (int row = 0; row <= k + 1; ++row)
      random_orthogonal(Rng::hash(salt_ ^ Rng::hash(f * 64 + static_cast<std::uint64_t>(row))),
                        basis_.data(), row, row_of(row));
    const double rho = is_short(question) ? rho_short_ : rho_long_;
    combine(row_of(0), row_of(k + 1), rho, out);  // c
    random_orthogonal(Rng::hash(salt_ ^ Rng::hash(question * 131 + 7) ^ Rng::hash(paraphrase + 1)),
                      out, 1, noise_.data());  // H, orthogonal to c
    combine(out, noise_.data(), tau_, out);
  }

 private:
  float* row_of(int row) {
    return basis_.data() + static_cast<std::size_t>(row) * static_cast<std::size_t>(dim_);
  }
  /// A random unit vector (seeded) orthogonal to the `count` unit rows at `rows` (Gram-Schmidt).
  void random_orthogonal(std::uint64_t seed, const float* rows, int count, float* out) const {
    Rng rng(seed);
    for (int i = 0; i < dim_; ++i) out[i] = static_cast<float>(rng.normal());
    for (int r = 0; r < count; ++r) {
      const float* u = rows + static_cast<std::size_t>(r) * static_cast<std::size_t>(dim_);
      double dot = 0;
      for (int i = 0; i < dim_; ++i) dot += static_cast<double>(out[i]) * u[i];
      for (int i = 0; i < dim_; ++i) out[i] = static_cast<float>(out[i] - dot * u[i]);
    }
    normalize(out, dim_);
  }
  /// out = sqrt(w) a + sqrt(1 - w) b for orthogonal unit a, b (a unit vector; out may be a).
  void combine(const float* a, const float* b, double w, float* out) const {
    const double x = std::sqrt(w), y = std::sqrt(1 - w);
    for (int i = 0; i < dim_; ++i) out[i] = static_cast<float>(x * a[i] + y * b[i]);
    normalize(out, dim_);
  }

  int dim_, family_size_;
  double tau_, rho_short_, rho_long_, short_share_;
  std::uint64_t salt_;
  std::vector<float> basis_, noise_;
};

/// What a cached prompt carries besides its vector: the question it asked (the ground truth a
/// real cache does not know; the lesson uses it to count false hits) and its wording.
struct EntryInfo {
  std::uint64_t question = 0, paraphrase = 0;
};

/// @brief A semantic cache of at most `capacity` entries: a lookup compares the query with
/// every entry (cosine) and returns the most similar; the least recently used entry is
/// evicted when a new one does not fit. Entries are stored normalised, so that a cosine is
/// one dot product.
class SemanticCache {
 public:
  SemanticCache(int dim, std::size_t capacity)
      : dim_(dim), capacity_(capacity), query_(static_cast<std::size_t>(dim)) {
    if (dim <= 0 || capacity == 0) throw std::invalid_argument("a cache needs dim and capacity");
    vectors_.reserve(capacity * static_cast<std::size_t>(dim));
  }

  struct Match {
    int index = -1;  ///< -1: the cache is empty
    double similarity = -2;
  };
  /// The most similar entry (ties: the lowest index). Counts one comparison per entry.
  Match nearest(const float* q) {
    std::copy(q, q + dim_, query_.begin());
    normalize(query_.data(), dim_);
    Match best;
    for (std::size_t i = 0; i < info_.size(); ++i) {
      const double s = dot(query_.data(), at(i), dim_);
      if (s > best.similarity) best = {static_cast<int>(i), s};
    }
    comparisons_ += info_.size();
    return best;
  }
  /// Mark entry `index` as used now.
  void touch(int index) { last_used_[static_cast<std::size_t>(index)] = ++clock_; }
  /// Store `q` with `info`, evicting the least recently used entry when full.
  void insert(const float* q, EntryInfo info) {
    std::size_t slot = info_.size();
    if (slot >= capacity_) {
      slot = 0;
      for (std::size_t i = 1; i < info_.size(); ++i)
        if (last_used_[i] < last_used_[slot]) slot = i;
      ++evictions_;
    } else {
      info_.push_back(info);
      last_used_.push_back(0);
      vectors_.resize(vectors_.size() + static_cast<std::size_t>(dim_));
    }
    info_[slot] = info;
    std::copy(
        q, q + dim_,
        vectors_.begin() + static_cast<std::ptrdiff_t>(slot * static_cast<std::size_t>(dim_)));
    last_used_[slot] = ++clock_;
  }
  const EntryInfo& info(int index) const { return info_[static_cast<std::size_t>(index)]; }
  std::size_t size() const { return info_.size(); }
  std::uint64_t comparisons() const { return comparisons_; }
  std::uint64_t evictions() const { return evictions_; }
  /// Bytes of the stored vectors (4 per dimension) and their bookkeeping.
  double bytes() const {
    return static_cast<double>(vectors_.size() * sizeof(float) +
                               info_.size() * (sizeof(EntryInfo) + sizeof(std::uint64_t)));
  }

 private:
  const float* at(std::size_t i) const {
    return vectors_.data() + i * static_cast<std::size_t>(dim_);
  }

  int dim_;
  std::size_t capacity_;
  std::vector<float> vectors_, query_;
  std::vector<EntryInfo> info_;
  std::vector<std::uint64_t> last_used_;
  std::uint64_t clock_ = 0, comparisons_ = 0, evictions_ = 0;
};

}  // namespace hldlab::semantic
