// Distributed search: top-k documents for a query over a corpus.
//
//   problem:  scan           -> read every word of every document for every query.
//   fix:      index          -> an inverted index: read only the postings of the query terms.
//   at scale: sharded        -> the index split by document over `shards` nodes; a query is
//             scattered to all of them and their top-k lists merged (exact). Each shard reads
//             1/shards of the postings, but the query waits for the slowest shard: with a
//             small chance p of a slow shard (a GC pause, a busy disk), a query hits one with
//             probability 1 - (1 - p)^shards: the P99 grows with the shard count (tail at
//             scale). With `timeout`, shards that have not answered are dropped: a partial
//             answer, missing their share of the top-k (recall loss).
//   fix:      sharded_hedged -> every shard has a replica; a shard request not answered after
//             `hedge_after` is sent to the replica too, the first answer wins: a query is slow
//             only if both copies of some shard are: p^2 instead of p.
//
// Model: a real corpus (`docs` documents of `doc_words` words, Zipf(word_skew) over
// `vocabulary` terms, from the seed) and real indexes (index.hpp). A query is `query_terms`
// distinct terms, drawn Zipf(query_skew) from a generator seeded by the request id (the same
// queries for every variant). Cost model: scan_ns per word scanned, posting_ns per posting read,
// plus per shard request `shard_rtt`; a shard request is slow with probability `slow_share`
// (hashed from request, shard and replica: common random numbers), adding `slow_delay`. The
// top-k of a partial answer is checked against the exact one (recall; a full merge is exact, as
// the tests check against a real scan); the scan's answer is computed with the index (the same
// ranking, tested), its cost is charged for every word.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "index.hpp"

namespace {
using namespace hldlab;

enum class Variant { scan, index, sharded, sharded_hedged };

class Search final : public System {
 public:
  Search(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        corpus_(search::generate(
            p.integer<std::uint32_t>("docs"), p.integer<std::uint32_t>("doc_words"),
            p.integer<std::uint32_t>("vocabulary"), p.real("word_skew"), ctx.rng())),
        shards_(variant == Variant::scan || variant == Variant::index
                    ? 1
                    : p.integer<std::uint32_t>("shards")),
        k_(p.integer<std::size_t>("k")),
        terms_(p.integer<std::size_t>("query_terms")),
        query_pick_(
            KeyDistribution::zipf(p.integer<std::uint64_t>("vocabulary"), p.real("query_skew"))),
        scan_ns_(p.real("scan_ns")),
        posting_ns_(p.real("posting_ns")),
        shard_rtt_(p.duration("shard_rtt")),
        slow_share_(p.real("slow_share")),
        slow_delay_(p.duration("slow_delay")),
        hedge_after_(p.duration("hedge_after")),
        timeout_(p.duration("timeout")),
        query_salt_(ctx.salt("queries")),
        slow_salt_(ctx.salt("slow shards")),
        postings_metric_(ctx.metric("postings_read")),
        hedges_metric_(ctx.metric("hedges")),
        partial_metric_(ctx.metric("partial_answers")) {
    for (std::uint32_t s = 0; s < shards_; ++s)
      shards_index_.push_back(std::make_unique<search::Shard>(corpus_, s, shards_));
    if (shards_ > 1) truth_ = std::make_unique<search::Shard>(corpus_, 0, 1);
    for (std::size_t d = 0; d < corpus_.docs.size(); ++d) words_ += corpus_.docs[d].size();
  }

  void handle(const Request& r) override {
    const std::vector<std::uint32_t> query = make_query(r.id);
    std::uint64_t postings = 0;
    Time latency = 0;
    std::vector<std::vector<search::Hit>> answers;
    bool partial = false;
    std::int64_t hedges = 0;
    for (std::uint32_t s = 0; s < shards_; ++s) {
      std::uint64_t read = 0;
      auto hits = shards_index_[s]->search(query, k_, read);
      postings += read;
      const double work = variant_ == Variant::scan ? scan_ns_ * static_cast<double>(words_)
                                                    : posting_ns_ * static_cast<double>(read);
      Time t = shard_rtt_ + round_time(work) + slow(r.id, s, 0);
      if (variant_ == Variant::sharded_hedged && t > hedge_after_) {
        ++hedges;
        t = std::min(t, hedge_after_ + shard_rtt_ + round_time(work) + slow(r.id, s, 1));
      }
      if (timeout_ > 0 && shards_ > 1 && t > timeout_) {  // dropped: the answer goes without it
        partial = true;
        continue;
      }
      latency = std::max(latency, t);
      answers.push_back(std::move(hits));
    }
    if (partial) latency = timeout_;
    const auto merged = search::merge(answers, k_);
    const double recall = partial ? recall_of(query, merged) : 1.0;  // a full merge is exact
    if (r.arrival >= counting_from_) {
      ++queries_;
      postings_ += static_cast<std::int64_t>(postings);
      words_scanned_ += variant_ == Variant::scan ? static_cast<std::int64_t>(words_) : 0;
      partial_ += partial;
      hedges_ += hedges;
      recall_sum_ += recall;
    }
    postings_metric_.add(static_cast<double>(postings));
    hedges_metric_.add(static_cast<double>(hedges));
    partial_metric_.add(partial);
    ctx_.after(latency, [this, r] { ctx_.complete(r, Outcome::ok); });
  }

  Value call(const std::string&, const Value& args) override {  // "query"
    const auto query = make_query(static_cast<std::uint64_t>(args["id"].as_int()));
    std::vector<std::vector<search::Hit>> answers;
    std::uint64_t read = 0;
    for (auto& shard : shards_index_) answers.push_back(shard->search(query, k_, read));
    List docs, terms;
    for (const auto& h : search::merge(answers, k_))
      docs.push_back(static_cast<std::int64_t>(h.doc));
    for (std::uint32_t t : query) terms.push_back(static_cast<std::int64_t>(t));
    return Map{{"docs", docs}, {"terms", terms}, {"postings", static_cast<std::int64_t>(read)}};
  }

  Map figures() const override {
    const double q = static_cast<double>(queries_);
    return {{"queries", queries_},
            {"postings_per_query", q > 0 ? static_cast<double>(postings_) / q : 0.0},
            {"words_per_query", q > 0 ? static_cast<double>(words_scanned_) / q : 0.0},
            {"partial_answers", partial_},
            {"hedges", hedges_},
            {"recall", q > 0 ? recall_sum_ / q : 0.0}};
  }

  void reset_stats() override {
    queries_ = postings_ = words_scanned_ = partial_ = hedges_ = 0;
    recall_sum_ = 0;
    counting_from_ = ctx_.now();
  }

 private:
  std::vector<std::uint32_t> make_query(std::uint64_t id) const {
    Rng rng(Rng::hash(id ^ query_salt_));
    std::vector<std::uint32_t> query;
    while (query.size() < terms_) {
      const auto t = static_cast<std::uint32_t>(query_pick_.sample(rng));
      if (std::find(query.begin(), query.end(), t) == query.end()) query.push_back(t);
    }
    return query;
  }

  Time slow(std::uint64_t id, std::uint32_t shard, std::uint32_t replica) const {
    return Rng::uniform_at(slow_salt_, id, shard * 2 + replica) < slow_share_ ? slow_delay_ : 0;
  }

  /// The share of the exact top-k that `merged` holds (1 when every shard answered).
  double recall_of(const std::vector<std::uint32_t>& query,
                   const std::vector<search::Hit>& merged) {
    if (!truth_) return 1.0;
    std::uint64_t unused = 0;
    const auto truth = truth_->search(query, k_, unused);
    if (truth.empty()) return 1.0;
    std::size_t found = 0;
    for (const auto& h : truth)
      found += std::any_of(merged.begin(), merged.end(),
                           [&](const search::Hit& m) { return m.doc == h.doc; });
    return static_cast<double>(found) / static_cast<double>(truth.size());
  }

  Variant variant_;
  Context& ctx_;
  search::Corpus corpus_;
  std::uint32_t shards_;
  std::size_t k_, terms_;
  KeyDistribution query_pick_;
  double scan_ns_, posting_ns_;
  Time shard_rtt_;
  double slow_share_;
  Time slow_delay_, hedge_after_, timeout_;
  std::uint64_t query_salt_, slow_salt_;
  Metric& postings_metric_;
  Metric& hedges_metric_;
  Metric& partial_metric_;
  std::vector<std::unique_ptr<search::Shard>> shards_index_;
  std::unique_ptr<search::Shard> truth_;  // sharded: the whole index, to measure recall
  std::uint64_t words_ = 0;

  Time counting_from_ = 0;
  std::int64_t queries_ = 0, postings_ = 0, words_scanned_ = 0, partial_ = 0, hedges_ = 0;
  double recall_sum_ = 0;
};

LessonInfo info() {
  return {
      "distributed_search",
      "Distributed search: a scan reads everything; a sharded index waits for its slowest "
      "shard; replicas and hedging cut the tail",
      "Scanning every document for every query reads the whole corpus. An inverted index reads "
      "only the postings of the query terms, and sharding it by document splits that work — but "
      "a scattered query waits for its slowest shard: with a small chance p of a slow shard, a "
      "query over n shards is slow with probability 1 - (1 - p)^n, so the P99 grows with the "
      "shard count. A timeout bounds the wait but drops the late shards' results (recall loss).",
      "Replicate every shard and hedge: a shard request not answered after a short delay is "
      "sent to the replica too, and the first answer wins; a shard is slow only if both copies "
      "are (p^2). The merge of the shards' top-k lists is exact: every document of the global "
      "top-k is in its own shard's top-k.",
      {"Elasticsearch / OpenSearch: document-sharded Lucene indexes, query-then-fetch "
       "scatter-gather, adaptive replica selection",
       "Google web search: Dean and Barroso, \"The Tail at Scale\" (CACM 2013): hedged and tied "
       "requests",
       "Apache Solr: distributed search with shards.tolerant partial results and timeAllowed",
       "Vespa, Bing: partial results under a latency budget"},
      {{"scan", true, "one node reads every word of every document"},
       {"index", false, "one node, an inverted index"},
       {"sharded", false, "the index split over `shards` nodes, scatter-gather, exact merge"},
       {"sharded_hedged", false, "the same with a replica per shard and hedged requests"}},
      {{"docs", ParamType::integer, 5000, "documents in the corpus", 1, 1e7},
       {"doc_words", ParamType::integer, 40, "words per document", 1, 1e5},
       {"vocabulary", ParamType::integer, 5000, "terms in the vocabulary", 2, 1e8},
       {"word_skew", ParamType::real, 1.0, "Zipf exponent of the words of the documents", 0, 5},
       {"query_terms", ParamType::integer, 2, "distinct terms per query", 1, 100},
       {"query_skew", ParamType::real, 0.8, "Zipf exponent of the query terms", 0, 5},
       {"k", ParamType::integer, 10, "results per query", 1, 10000},
       {"shards", ParamType::integer, 8, "sharded variants: shards", 1, 10000},
       {"scan_ns", ParamType::real, 20.0, "scan: nanoseconds per word read", 0, 1e9},
       {"posting_ns", ParamType::real, 100.0, "index: nanoseconds per posting read", 0, 1e9},
       {"shard_rtt", ParamType::duration, "1ms", "network round trip to a shard", 0, 60},
       {"slow_share", ParamType::real, 0.001,
        "probability that a shard request is slow (a GC pause, a busy disk)", 0, 1},
       {"slow_delay", ParamType::duration, "50ms", "what a slow shard request adds", 0, 60},
       {"hedge_after", ParamType::duration, "5ms", "sharded_hedged: send to the replica after this",
        0, 60},
       {"timeout", ParamType::duration, "0s",
        "sharded variants: drop shards slower than this (0: wait for all)", 0, 60}},
      {},
      {{"query",
        "the top-k documents (merged), the terms and the postings read for query `id`",
        {{"id", ParamType::integer, 0, "query (request) id", 0, 1e18}}}},
      {{"postings_read", MetricSpec::Kind::counter, "postings read by the queries"},
       {"hedges", MetricSpec::Kind::counter, "hedged shard requests sent to a replica"},
       {"partial_answers", MetricSpec::Kind::counter, "answers missing a timed-out shard"}},
      {{"queries", Unit::count, "queries answered"},
       {"postings_per_query", Unit::number, "postings read per query (all shards)"},
       {"words_per_query", Unit::number, "scan: words read per query"},
       {"partial_answers", Unit::count, "answers without a shard that timed out"},
       {"hedges", Unit::count, "shard requests hedged to a replica"},
       {"recall", Unit::fraction, "mean share of the exact top-k returned"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"scan", Variant::scan},
      {"index", Variant::index},
      {"sharded", Variant::sharded},
      {"sharded_hedged", Variant::sharded_hedged}};
  return std::make_unique<Search>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
