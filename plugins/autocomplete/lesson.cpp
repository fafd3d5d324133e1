// Autocomplete (type-ahead): the k most searched terms that start with what the user typed.
//
//   problem:  prefix_scan     -> terms sorted alphabetically; binary-search the prefix, read
//                                every matching term, keep the k best (LIKE 'pre%' ORDER BY
//                                count DESC LIMIT k): O(log n + matches), thousands of rows
//                                for a one-letter prefix.
//             trie            -> a trie finds the prefix's node in O(prefix length), but then
//                                walks its whole subtree to rank the terms: O(subtree), no better.
//   fix:      trie_topk       -> every node caches the k best terms below it: a query walks
//                                exactly prefix-length nodes and reads one list. The price:
//                                memory (k term ids per node) and updates: a search that
//                                raises a term's count moves it up the list of every node on
//                                its path (term length x k comparisons).
//             trie_topk_batch -> the same cache rebuilt every `rebuild_period` from the counts
//                                (as production systems do, offline): updates only bump a
//                                count, but answers are stale until the next rebuild.
//   workload: request key = a term's popularity rank (Zipf); a read types the first 1..length
//             characters of it (drawn per request, the same in every variant); a write is a
//             completed search of it (count + 1). `trend` makes a rare term suddenly popular.
//   cost:     service time = request_overhead + nodes (or rows) visited x node_cost +
//             comparisons x compare_cost; requests then queue for one of `workers`.
//   measured: nodes and comparisons per query and per update, the terms matching the prefix,
//             bytes per term, and answers that differ from the exact top-k of the live counts.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "trie.hpp"

namespace {
using namespace hldlab;
using namespace hldlab::typeahead;

enum class Structure { prefix_scan, trie, trie_topk, trie_topk_batch };

class Autocomplete final : public System {
 public:
  Autocomplete(Structure structure, const Params& p, Context& ctx)
      : structure_(structure),
        ctx_(ctx),
        k_(p.integer<std::size_t>("k")),
        overhead_(p.duration("request_overhead")),
        node_cost_(p.duration("node_cost")),
        compare_cost_(p.duration("compare_cost")),
        rebuild_period_(p.duration("rebuild_period")),
        prefix_salt_(ctx.salt("prefix length")),
        trend_salt_(ctx.salt("trend")),
        terms_(syllable_dictionary(p.integer<std::size_t>("terms"), p.real("initial_searches"),
                                   p.real("zipf_s"), ctx.rng())),
        sorted_(terms_),
        answer_(k_),
        truth_(k_),
        nodes_metric_(ctx.metric("nodes_visited")),
        comparisons_metric_(ctx.metric("comparisons")),
        stale_metric_(ctx.metric("stale_answers")),
        rebuilds_metric_(ctx.metric("rebuilds")),
        server_(ctx, {.workers = p.integer<int>("workers")},
                [this](Request& r) { ctx_.complete(r, Outcome::ok); }) {
    if (structure_ != Structure::prefix_scan) trie_.emplace(terms_, uses_cache() ? k_ : 0);
    ctx.metric("structure_bytes").set(static_cast<double>(bytes()));
    if (structure_ == Structure::trie_topk_batch) schedule_rebuild();
  }

  void handle(const Request& r) override {
    const TermId t = term_of(r);
    Work w;
    if (r.op == Op::write) {
      search_done(t, w);
      ++updates_;
      update_work_.nodes += w.nodes, update_work_.comparisons += w.comparisons;
    } else {
      const std::string& text = terms_.text(t);
      const std::size_t typed = 1 + Rng::hash(r.id ^ prefix_salt_) % text.size();
      query(std::string_view(text).substr(0, typed), w);
      if (trend_share_ > 0 && t == trending_) check_trend();
      ++queries_;
      query_work_.nodes += w.nodes, query_work_.comparisons += w.comparisons;
    }
    nodes_metric_.add(static_cast<double>(w.nodes));
    comparisons_metric_.add(static_cast<double>(w.comparisons));
    server_.submit(r, overhead_ + w.nodes * node_cost_ + w.comparisons * compare_cost_);
  }

  void inject(const std::string&, const Value& p) override {  // trend
    const std::int64_t rank = p["rank"].as_int();
    if (rank >= static_cast<std::int64_t>(terms_.size()))
      throw std::invalid_argument("trend: rank " + std::to_string(rank) + " beyond the " +
                                  std::to_string(terms_.size()) + " terms");
    trending_ = static_cast<TermId>(rank);
    trend_share_ = p["share"].as_double();
    ctx_.log("trending: '" + terms_.text(trending_) + "' gets " +
             std::to_string(trend_share_ * 100) + "% of the searches");
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "term") {
      const std::int64_t rank = args["rank"].as_int();
      if (rank >= static_cast<std::int64_t>(terms_.size()))
        throw std::invalid_argument("no term of rank " + std::to_string(rank));
      return Map{{"term", terms_.text(static_cast<TermId>(rank))},
                 {"count", terms_.count(static_cast<TermId>(rank))}};
    }
    if (op == "complete") {
      Work w;
      const std::string prefix = args["prefix"].as_string();
      query(prefix, w, /*count=*/false);
      List out;
      for (TermId t : answer()) out.push_back(terms_.text(t));
      return Map{{"terms", std::move(out)},
                 {"nodes", w.nodes},
                 {"comparisons", w.comparisons},
                 {"matches", matches_},
                 {"stale", answer() != truth_.best()}};
    }
    return Map{{"terms", static_cast<std::int64_t>(terms_.size())},  // stats
               {"trie_nodes", static_cast<std::int64_t>(trie_ ? trie_->nodes() : 0)},
               {"bytes", static_cast<std::int64_t>(bytes())},
               {"rebuilds", rebuilds_}};
  }

  Map figures() const override {
    auto per = [](std::int64_t total, std::int64_t count) {
      return count > 0 ? static_cast<double>(total) / static_cast<double>(count) : 0.0;
    };
    return {{"queries", queries_},
            {"updates", updates_},
            {"nodes_per_query", per(query_work_.nodes, queries_)},
            {"comparisons_per_query", per(query_work_.comparisons, queries_)},
            {"matches_per_query", per(matches_total_, queries_)},
            {"nodes_per_update", per(update_work_.nodes, updates_)},
            {"comparisons_per_update", per(update_work_.comparisons, updates_)},
            {"stale_share", per(stale_, queries_)},
            {"trend_stale", per(trend_stale_, trend_queries_)},
            {"bytes_per_term", static_cast<double>(bytes()) / static_cast<double>(terms_.size())},
            {"rebuilds", rebuilds_}};
  }

  void reset_stats() override {
    queries_ = updates_ = stale_ = matches_total_ = rebuilds_ = trend_queries_ = trend_stale_ = 0;
    query_work_ = update_work_ = Work{};
  }

 private:
  bool uses_cache() const {
    return structure_ == Structure::trie_topk || structure_ == Structure::trie_topk_batch;
  }
  std::size_t bytes() const {
    return terms_.bytes() +
           (structure_ == Structure::prefix_scan ? sorted_.bytes() : trie_->bytes());
  }

  /// The term a request is about: its key's rank, or the trending term for a share of them
  /// (drawn per request, the same requests in every variant).
  TermId term_of(const Request& r) const {
    if (trend_share_ > 0 && Rng::uniform_at(trend_salt_, r.id, 0) < trend_share_) return trending_;
    return static_cast<TermId>(r.key % terms_.size());
  }

  /// A completed search: the term's count goes up by one.
  void search_done(TermId t, Work& w) {
    terms_.add(t, 1);
    ++w.nodes;  // the count
    if (structure_ == Structure::trie_topk) trie_->raised(t, terms_.counts(), w);
  }

  /// Answer `prefix` with the variant's structure; compare with the exact top-k of the live
  /// counts (the prefix scan's answer, computed apart unless it is the variant's own).
  void query(std::string_view prefix, Work& w, bool count = true) {
    Work truth_work;
    sorted_.complete(prefix, terms_.counts(), truth_, truth_work, matches_);
    switch (structure_) {
      case Structure::prefix_scan:
        w = truth_work;
        break;
      case Structure::trie:
        trie_->complete_by_walk(prefix, terms_.counts(), answer_, w);
        break;
      case Structure::trie_topk:
      case Structure::trie_topk_batch:
        trie_->complete_cached(prefix, cached_, w);
        break;
    }
    if (!count) return;
    matches_total_ += matches_;
    if (answer() != truth_.best()) {
      ++stale_;
      stale_metric_.add(1);
    }
  }
  const std::vector<TermId>& answer() const {
    switch (structure_) {
      case Structure::prefix_scan:
        return truth_.best();
      case Structure::trie:
        return answer_.best();
      default:
        return cached_;
    }
  }

  /// A query typing the trending term's prefix: is its answer the exact one? Its count keeps
  /// climbing, so it moves up (or into) the lists of its prefixes all the time.
  void check_trend() {
    ++trend_queries_;
    if (answer() != truth_.best()) ++trend_stale_;
  }

  void schedule_rebuild() {
    ctx_.after(rebuild_period_, [this] {
      trie_->rebuild(terms_.counts());
      ++rebuilds_;
      rebuilds_metric_.add(1);
      schedule_rebuild();
    });
  }

  Structure structure_;
  Context& ctx_;
  std::size_t k_;
  Time overhead_, node_cost_, compare_cost_, rebuild_period_;
  std::uint64_t prefix_salt_, trend_salt_;
  Terms terms_;
  SortedList sorted_;         // the prefix scan's structure, and the exact answer for every variant
  std::optional<Trie> trie_;  // not for prefix_scan
  TopK answer_, truth_;
  std::vector<TermId> cached_;
  std::int64_t matches_ = 0;
  TermId trending_ = 0;
  double trend_share_ = 0;
  Metric& nodes_metric_;
  Metric& comparisons_metric_;
  Metric& stale_metric_;
  Metric& rebuilds_metric_;
  Server<Request> server_;
  std::int64_t queries_ = 0, updates_ = 0, stale_ = 0, matches_total_ = 0, rebuilds_ = 0;
  std::int64_t trend_queries_ = 0, trend_stale_ = 0;  // queries for the trending term
  Work query_work_, update_work_;
};

LessonInfo info() {
  return {
      "autocomplete",
      "Autocomplete: a prefix scan per keystroke -> a trie with the top-k cached in every node",
      "Type-ahead asks, at every keystroke, for the k most searched terms starting with what "
      "was typed. A prefix scan over a sorted list (or LIKE 'pre%' ORDER BY count DESC in a "
      "database) reads every matching term: thousands for a one-letter prefix, so the cost "
      "grows with the dictionary. A plain trie finds the prefix fast but still walks the whole "
      "subtree to rank it.",
      "Cache the k best terms in every trie node: a query walks exactly prefix-length nodes "
      "and reads one list, whatever the dictionary's size. It costs memory (k ids per node) and "
      "work on updates (a popularity change moves the term up the list of every node on its "
      "path); production systems rebuild the lists offline in batches instead, and answers are "
      "stale in between.",
      {"Google / Bing query autocompletion (top-k completions per prefix, rebuilt from logs)",
       "Twitter typeahead.js and LinkedIn Cleo (prefix indexes with precomputed top results)",
       "Elasticsearch completion suggester (an FST with weights, rebuilt at segment merge)",
       "Redis sorted sets or ZRANGEBYLEX per prefix for small dictionaries",
       "Fredkin 1960, \"Trie memory\"; Hsu & Ottaviano 2013, \"Space-efficient data "
       "structures for top-k completion\""},
      {{"prefix_scan", true,
        "binary search in a sorted list, then read every matching term: O(log n + matches)"},
       {"trie", true, "walk the prefix, then the whole subtree below it: O(prefix + subtree)"},
       {"trie_topk", false,
        "k best terms cached per node, updated on every search: O(prefix) queries, fresh"},
       {"trie_topk_batch", false,
        "k best cached per node, rebuilt every rebuild_period: cheap updates, stale answers"}},
      {{"terms", ParamType::integer, 20000, "terms in the dictionary (rank 0 most searched)", 1,
        1e7},
       {"k", ParamType::integer, 10, "completions per query", 1, 1000},
       {"initial_searches", ParamType::real, 1e6,
        "search counts at the start, spread over the ranks as Zipf(zipf_s)", 0, 1e15},
       {"zipf_s", ParamType::real, 1.0, "exponent of the initial counts (use the workload's)", 0,
        20},
       {"rebuild_period", ParamType::duration, "10s", "trie_topk_batch: time between rebuilds",
        1e-6, 1e7},
       {"node_cost", ParamType::duration, "50ns", "time per trie node or list row visited", 0, 1},
       {"compare_cost", ParamType::duration, "5ns", "time per comparison", 0, 1},
       {"request_overhead", ParamType::duration, "1us", "fixed time per request", 0, 1},
       {"workers", ParamType::integer, 4, "requests served at once", 1, 100000}},
      {{"trend",
        "from now on a share of the searches (queries and completed searches) is for the term "
        "of rank `rank`, a rare one: will it show up in the completions?",
        {{"rank", ParamType::integer, 5000, "popularity rank of the trending term", 0, 1e7},
         {"share", ParamType::real, 0.05, "share of the requests about it (0 ends the trend)", 0,
          1}}}},
      {{"complete",
        "the completions of a prefix: terms (best first), nodes, comparisons, matches (terms "
        "starting with it), stale (differs from the exact answer)",
        {{"prefix", ParamType::string, "", "what was typed"}}},
       {"term",
        "the term of a popularity rank and its count",
        {{"rank", ParamType::integer, 0, "popularity rank", 0, 1e7}}},
       {"stats", "terms, trie_nodes, bytes, rebuilds", {}}},
      {{"nodes_visited", MetricSpec::Kind::counter, "trie nodes or list rows visited"},
       {"comparisons", MetricSpec::Kind::counter, "comparisons (characters, strings, counts)"},
       {"stale_answers", MetricSpec::Kind::counter,
        "queries answered differently from the exact top-k of the live counts"},
       {"rebuilds", MetricSpec::Kind::counter, "trie_topk_batch: rebuilds of the cached lists"},
       {"structure_bytes", MetricSpec::Kind::gauge, "bytes of the dictionary and its structure"}},
      {{"queries", Unit::count, "prefix queries answered"},
       {"updates", Unit::count, "completed searches counted (writes)"},
       {"nodes_per_query", Unit::number, "trie nodes or list rows visited per query"},
       {"comparisons_per_query", Unit::number, "comparisons per query"},
       {"matches_per_query", Unit::number, "terms starting with the typed prefix, per query"},
       {"nodes_per_update", Unit::number, "nodes (and counts) written per update"},
       {"comparisons_per_update", Unit::number, "comparisons per update"},
       {"stale_share", Unit::fraction,
        "queries whose completions differ from the exact top-k of the live counts"},
       {"trend_stale", Unit::fraction,
        "queries typing the trending term answered differently from the exact top-k"},
       {"bytes_per_term", Unit::bytes, "bytes of the dictionary and the structure per term"},
       {"rebuilds", Unit::count, "trie_topk_batch: rebuilds of the cached lists"}},
      /*uses_service_time=*/false};  // the work of the structure sets the time
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Structure> structures[] = {
      {"prefix_scan", Structure::prefix_scan},
      {"trie", Structure::trie},
      {"trie_topk", Structure::trie_topk},
      {"trie_topk_batch", Structure::trie_topk_batch}};
  return std::make_unique<Autocomplete>(variant_value(variant, structures), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
