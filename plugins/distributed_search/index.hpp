// A real inverted index over a generated corpus, sharded by document, with per-shard top-k and
// an exact merge (distributed_search lesson).
//
// Corpus: `docs` documents of `doc_words` words, each word drawn Zipf(s) over a vocabulary.
// Score of a document for a query: sum over query terms of tf(term, doc) x idf(term), with
// idf = ln(N / df) from the whole corpus (every shard uses the global statistics, so shard
// scores compare). Ties broken by the lower document id. Top-k of a shard, then the merge of
// the shards' top-k lists: every document of the global top-k is in its own shard's top-k, so
// the merge is exact.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hldlab/distribution.hpp"

namespace search {

struct Hit {
  std::uint32_t doc = 0;
  double score = 0;
};
/// Best first: higher score, then lower document id.
inline bool better(const Hit& a, const Hit& b) {
  return a.score != b.score ? a.score > b.score : a.doc < b.doc;
}

struct Corpus {
  std::vector<std::vector<std::uint32_t>> docs;  // the words of every document
  std::vector<double> idf;                       // per term
};

inline Corpus generate(std::uint32_t docs, std::uint32_t words, std::uint32_t vocabulary,
                       double skew, hldlab::Rng& rng) {
  const auto zipf = hldlab::KeyDistribution::zipf(vocabulary, skew);
  Corpus c;
  c.docs.resize(docs);
  std::vector<std::uint32_t> df(vocabulary, 0), last(vocabulary, UINT32_MAX);
  for (std::uint32_t d = 0; d < docs; ++d) {
    c.docs[d].resize(words);
    for (auto& w : c.docs[d]) {
      w = static_cast<std::uint32_t>(zipf.sample(rng));
      if (last[w] != d) {
        last[w] = d;
        ++df[w];
      }
    }
  }
  c.idf.resize(vocabulary);
  for (std::uint32_t t = 0; t < vocabulary; ++t)
    c.idf[t] = df[t] ? std::log(static_cast<double>(docs) / df[t]) : 0.0;
  return c;
}

/// The k best of `hits` (best first).
inline std::vector<Hit> top_k(std::vector<Hit> hits, std::size_t k) {
  const std::size_t n = std::min(k, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(n), hits.end(),
                    better);
  hits.resize(n);
  return hits;
}

/// The answer of a full scan: every word of every document read (the truth the index must
/// match). `words_read` counts them.
inline std::vector<Hit> scan(const Corpus& c, const std::vector<std::uint32_t>& query,
                             std::size_t k, std::uint64_t& words_read) {
  std::vector<Hit> hits;
  for (std::uint32_t d = 0; d < c.docs.size(); ++d) {
    double score = 0;  // the same arithmetic, in the same order, as the index
    for (std::uint32_t t : query) {
      std::uint32_t tf = 0;
      for (std::uint32_t w : c.docs[d]) tf += w == t;
      if (tf > 0) score += tf * c.idf[t];
    }
    words_read += c.docs[d].size();
    if (score > 0) hits.push_back({d, score});
  }
  return top_k(std::move(hits), k);
}

/// The inverted index of the documents d with d % shards == shard.
class Shard {
 public:
  Shard(const Corpus& c, std::uint32_t shard, std::uint32_t shards) : idf_(c.idf) {
    postings_.resize(c.idf.size());
    for (std::uint32_t d = shard; d < c.docs.size(); d += shards) {
      for (std::uint32_t w : c.docs[d]) {
        auto& list = postings_[w];
        if (!list.empty() && list.back().doc == d)
          ++list.back().tf;
        else
          list.push_back({d, 1});
      }
    }
    score_.assign(c.docs.size(), 0.0);
    seen_.assign(c.docs.size(), false);
  }

  /// Top-k of this shard; `postings_read` counts the postings it walked.
  std::vector<Hit> search(const std::vector<std::uint32_t>& query, std::size_t k,
                          std::uint64_t& postings_read) {
    touched_.clear();
    for (std::uint32_t t : query) {
      for (const Posting& p : postings_[t]) {
        if (!seen_[p.doc]) {
          seen_[p.doc] = true;
          touched_.push_back(p.doc);
        }
        score_[p.doc] += p.tf * idf_[t];
      }
      postings_read += postings_[t].size();
    }
    std::vector<Hit> hits;
    hits.reserve(touched_.size());
    for (std::uint32_t d : touched_) {
      if (score_[d] > 0) hits.push_back({d, score_[d]});
      score_[d] = 0;
      seen_[d] = false;
    }
    return top_k(std::move(hits), k);
  }

  std::uint64_t postings(std::uint32_t term) const { return postings_[term].size(); }

 private:
  struct Posting {
    std::uint32_t doc = 0;
    std::uint32_t tf = 0;
  };
  const std::vector<double>& idf_;
  std::vector<std::vector<Posting>> postings_;
  std::vector<double> score_;  // scratch, zero between queries
  std::vector<bool> seen_;     // scratch: documents touched by this query
  std::vector<std::uint32_t> touched_;
};

/// Merge the shards' top-k lists into the global top-k.
inline std::vector<Hit> merge(const std::vector<std::vector<Hit>>& lists, std::size_t k) {
  std::vector<Hit> all;
  for (const auto& l : lists) all.insert(all.end(), l.begin(), l.end());
  return top_k(std::move(all), k);
}

}  // namespace search
