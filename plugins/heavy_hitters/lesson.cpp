// Heavy hitters: "what is trending?" over a stream of events on millions of topics.
//
//   problem:  exact_counts       -> counts[topic] += 1 in a hash map of every topic ever seen
//                                   (16 bytes a slot, at most 3/4 full); "trending" scans
//                                   every topic through a k-heap: O(topics) per query
//   fix:      count_min          -> a count-min sketch of w x d counters (fixed memory) plus a
//                                   min-heap of the k best estimates; an event costs d hashes
//                                   and a heap update, a query sorts k entries. Estimates
//                                   never undercount; estimate - count <= (e / w) N with
//                                   probability >= 1 - e^-d
//             count_min_cu       -> conservative update: raise only the counters below the new
//                                   estimate; never worse, usually much better
//             count_min_decayed  -> conservative update with forward decay: an event at t
//                                   weighs 2^((t - landmark) / half_life), so the heap holds
//                                   what is trending now, not all time
//
// Model: a write is an event on the topic its key names; `shift_topics` moves the news on
// (from then on every key names another topic). A read asks for the top k. The question's
// truth is the exact count of every topic, decayed with `half_life` when it is not 0 (the
// all-time variants answer all-time counts: after a shift their top k is yesterday's). The
// structure's work (hashes, random accesses, comparisons) is charged through the cost model
// (hash_ns, access_ns, compare_ns) on the app server (cpu_workers). An operation runs when its
// request arrives; its answer leaves after the queueing and the time its work costs.
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hldlab/cost_model.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "sketch.hpp"

namespace {
using namespace hldlab;
using sketch::Counted;
using sketch::Work;

enum class Variant { exact_counts, count_min, count_min_cu, count_min_decayed };

/// Forward decay renormalises (moves its landmark to now) when weights pass this.
constexpr double kRenormaliseAbove = 0x1p32;

class Trending final : public System {
 public:
  Trending(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        cost_{p.real("hash_ns"), p.real("access_ns"), p.real("compare_ns")},
        k_(p.integer<std::size_t>("k")),
        half_life_(p.duration("half_life")),
        topic_salt_(ctx.rng().next()),
        events_metric_(ctx.metric("events")),
        memory_metric_(ctx.metric("memory_bytes")),
        recall_metric_(ctx.metric("topk_recall")),
        cpu_(ctx, {.workers = p.integer<int>("cpu_workers")}, [this](Request& r) { finish(r); }) {
    // Every variant draws the same row hashes (the variants differ in how they update).
    Rng hashes(ctx.rng().next());
    const auto width = p.integer<std::uint64_t>("width");
    const int depth = p.integer<int>("depth");
    if (variant_ == Variant::count_min || variant_ == Variant::count_min_cu)
      counts_.emplace(width, depth, hashes);
    if (variant_ == Variant::count_min_decayed) decayed_counts_.emplace(width, depth, hashes);
    if (variant_ != Variant::exact_counts) heap_.emplace(k_);
    memory_metric_.set(static_cast<double>(memory_bytes()));
  }

  void handle(const Request& r) override {
    Work work;
    if (r.op == Op::write) {
      event(topic_of(r.key), work);
    } else {
      ++queries_;
      const std::uint64_t before = work.compares;
      answer(answer_, work);
      query_compares_ += work.compares - before;
    }
    cpu_.submit(r, cost_.time(work));
  }

  Value call(const std::string& op, const Value&) override {
    if (op == "shift_topics") {
      ++epoch_;
      ctx_.log("the news moves on: topic epoch " + std::to_string(epoch_));
      return static_cast<std::int64_t>(epoch_);
    }
    Work ignored;  // "top"
    std::vector<Counted> reported;
    answer(reported, ignored);
    const Quality q = quality(reported);
    List top;
    const double now = weight();
    for (const Counted& c : reported)
      top.push_back(Map{{"topic", static_cast<std::int64_t>(c.key)},
                        {"estimate", c.count / now},
                        {"count", question_truth().count(c.key) / now}});
    return Map{{"top", top}, {"precision", q.precision}, {"recall", q.recall}};
  }

  Map figures() const override {
    std::vector<Counted> reported;
    Work ignored;
    answer(reported, ignored);
    const Quality q = quality(reported);
    const auto events = static_cast<double>(events_), queries = static_cast<double>(queries_);
    const auto topics = static_cast<double>(all_time_.size());
    Map f{
        {"events", events_},
        {"queries", queries_},
        {"topics", static_cast<std::int64_t>(all_time_.size())},
        {"memory_bytes", static_cast<std::int64_t>(memory_bytes())},
        {"bytes_per_topic", static_cast<double>(memory_bytes()) / std::max(1.0, topics)},
        {"topk_precision", q.precision},
        {"topk_recall", q.recall},
        {"accesses_per_event", events > 0 ? static_cast<double>(event_accesses_) / events : 0.0},
        {"compares_per_query", queries > 0 ? static_cast<double>(query_compares_) / queries : 0.0},
        {"query_p99", to_seconds(query_latency_.quantile(0.99))}};
    if (variant_ != Variant::exact_counts) {
      const Errors e = errors();
      f["mean_overestimate"] = e.mean;
      f["within_bound"] = e.within_bound;
      f["error_bound"] = e.bound;
      f["epsilon"] = counts_ ? counts_->epsilon() : decayed_counts_->epsilon();
      f["delta"] = counts_ ? counts_->delta() : decayed_counts_->delta();
    }
    return f;
  }

  void reset_stats() override {
    events_ = queries_ = 0;
    event_accesses_ = query_compares_ = 0;
    query_latency_.reset();
  }

 private:
  struct Quality {
    double precision = 1, recall = 1;
  };
  struct Errors {
    double mean = 0, within_bound = 1, bound = 0;
  };

  /// The topic a key names in the current epoch (the same in every variant). Topic ids are
  /// 63-bit: the top bit of a 64-bit hash is dropped so that Lua sees them as integers.
  std::uint64_t topic_of(std::uint64_t key) const {
    return Rng::hash(key ^ topic_salt_ ^ (epoch_ * 0x9E3779B97F4A7C15ULL)) >> 1;
  }
  bool decays() const { return half_life_ > 0; }
  /// The forward-decay weight of an event now: 2^((now - landmark) / half_life), or 1.
  double weight() const {
    if (!decays()) return 1;
    return std::exp2(static_cast<double>(ctx_.now() - landmark_) / static_cast<double>(half_life_));
  }
  /// The exact counts the question asks about: decayed ones when half_life > 0.
  const sketch::ExactCounts& question_truth() const { return decays() ? decayed_ : all_time_; }

  void event(std::uint64_t topic, Work& work) {
    ++events_;
    events_metric_.add(1);
    double w = weight();
    if (w > kRenormaliseAbove) {
      renormalise(w, work);
      w = 1;
    }
    Work ignored;  // the truth, for the figures
    all_time_.add(topic, 1, ignored);
    if (decays()) decayed_.add(topic, w, ignored);
    total_weight_ += decays() ? w : 1;
    ++stream_events_;
    const std::uint64_t before = work.accesses;
    switch (variant_) {
      case Variant::exact_counts: {
        const std::size_t size = exact_.size();
        exact_.add(topic, decays() ? w : 1, work);
        if (exact_.size() != size) memory_metric_.set(static_cast<double>(memory_bytes()));
        break;
      }
      case Variant::count_min:
      case Variant::count_min_cu:
        heap_->offer(topic, counts_->add(topic, 1, variant_ == Variant::count_min_cu, work), work);
        break;
      case Variant::count_min_decayed:
        heap_->offer(topic, decayed_counts_->add(topic, w, true, work), work);
        break;
    }
    event_accesses_ += work.accesses - before;
  }

  /// Move the decay landmark to now: every forward count is divided by the weight now.
  void renormalise(double w, Work& work) {
    Work ignored;
    decayed_.scale(1 / w, ignored);
    total_weight_ /= w;
    if (variant_ == Variant::exact_counts) exact_.scale(1 / w, work);
    if (decayed_counts_) decayed_counts_->scale(1 / w, work);
    if (heap_) heap_->scale(1 / w);
    landmark_ = ctx_.now();
  }

  /// The variant's top k, best first.
  void answer(std::vector<Counted>& out, Work& work) const {
    if (heap_)
      heap_->sorted(out, work);
    else
      exact_.top(k_, out, work);
  }

  /// Precision and recall of `reported` against the question's exact top k: a reported topic
  /// is right when its true count is at least the k-th largest (ties at the boundary count).
  Quality quality(const std::vector<Counted>& reported) const {
    std::vector<Counted> truth;
    Work ignored;
    question_truth().top(k_, truth, ignored);
    Quality q;
    if (truth.empty()) return q;
    const double kth = truth.back().count;
    std::size_t right = 0;
    for (const Counted& c : reported) right += question_truth().count(c.key) >= kth;
    q.precision = reported.empty() ? 1 : static_cast<double>(right) / reported.size();
    q.recall = std::min(1.0, static_cast<double>(right) / truth.size());
    recall_metric_.set(q.recall);
    return q;
  }

  /// The sketch's overestimates over every topic seen, against the counts it is built for
  /// (all-time, or decayed for count_min_decayed when half_life > 0), and the bound e/w N.
  Errors errors() const {
    Errors e;
    const bool forward = decays() && decayed_counts_;
    const sketch::ExactCounts& truth = forward ? decayed_ : all_time_;
    const double now = forward ? weight() : 1;
    const double n = (forward ? total_weight_ : static_cast<double>(stream_events_)) / now;
    e.bound = (counts_ ? counts_->epsilon() : decayed_counts_->epsilon()) * n;
    double sum = 0;
    std::size_t within = 0;
    Work ignored;
    truth.for_each([&](std::uint64_t topic, double count) {
      const double estimate = counts_ ? static_cast<double>(counts_->estimate(topic, ignored))
                                      : decayed_counts_->estimate(topic, ignored);
      const double over = (estimate - count) / now;
      sum += over;
      within += over <= e.bound * (1 + 1e-9);
    });
    if (truth.size() > 0) {
      e.mean = sum / static_cast<double>(truth.size());
      e.within_bound = static_cast<double>(within) / static_cast<double>(truth.size());
    }
    return e;
  }

  void finish(const Request& r) {
    if (r.op == Op::read) query_latency_.record(ctx_.now() - r.arrival);
    ctx_.complete(r, Outcome::ok);
  }

  std::size_t memory_bytes() const {
    if (variant_ == Variant::exact_counts) return exact_.memory_bytes();
    return (counts_ ? counts_->memory_bytes() : decayed_counts_->memory_bytes()) +
           heap_->memory_bytes();
  }

  Variant variant_;
  Context& ctx_;
  CostModel cost_;
  std::size_t k_;
  Time half_life_;
  std::uint64_t topic_salt_;
  std::uint64_t epoch_ = 0;
  Time landmark_ = 0;
  double total_weight_ = 0;         // N of the question (forward-decayed when half_life > 0)
  std::int64_t stream_events_ = 0;  // N of the all-time sketches (reset_stats keeps them)
  Metric& events_metric_;
  Metric& memory_metric_;
  Metric& recall_metric_;
  sketch::ExactCounts exact_;                              // exact_counts
  std::optional<sketch::CountMin<std::uint32_t>> counts_;  // count_min, count_min_cu
  std::optional<sketch::CountMin<double>> decayed_counts_;
  std::optional<sketch::TopK> heap_;
  sketch::ExactCounts all_time_, decayed_;  // the truth, for the figures
  std::vector<Counted> answer_;             // the last query's answer (reused)
  Server<Request> cpu_;
  Histogram query_latency_;
  std::int64_t events_ = 0, queries_ = 0;
  std::uint64_t event_accesses_ = 0, query_compares_ = 0;
};

LessonInfo info() {
  return {
      "heavy_hitters",
      "Heavy hitters: what is trending, with a count-min sketch and a top-k heap",
      "Counting every topic exactly keeps a hash map entry per topic ever seen: memory grows "
      "with the long tail (millions of hashtags), and asking for the top k scans all of them. "
      "All-time counts also answer the wrong question: yesterday's news stays on top.",
      "A count-min sketch (w x d counters, fixed memory) estimates any topic's count, never "
      "below it and at most (e/w) N above it with probability 1 - e^-d; a min-heap keeps the k "
      "best estimates, so a query sorts k entries. Conservative update lowers the error. "
      "Forward-decayed weights (an event counts 2^(t / half_life)) make it \"trending now\".",
      {"Twitter / X trends and Facebook trending: sketches over sliding or decayed windows",
       "Redis Stack: CMS.INCRBY / CMS.QUERY and TOPK.ADD / TOPK.LIST",
       "Apache DataSketches (frequent items), Spark countMinSketch, Flink",
       "Network monitoring: heavy flows on routers (Estan & Varghese, \"New directions in "
       "traffic measurement\", 2002)",
       "G. Cormode and S. Muthukrishnan, \"An improved data stream summary: the count-min "
       "sketch\", 2005; G. Cormode et al., \"Forward decay\", 2009"},
      {{"exact_counts", true, "exact hash map of every topic's count; top k scans them all"},
       {"count_min", false, "count-min sketch + top-k heap (all-time counts)"},
       {"count_min_cu", false, "count-min with conservative update + top-k heap (all-time)"},
       {"count_min_decayed", false,
        "conservative count-min with forward decay (half_life) + top-k heap: trending now"}},
      {{"k", ParamType::integer, 10, "topics in the top k", 1, 100000},
       {"width", ParamType::integer, 2719, "w: counters per row (epsilon = e / w)", 1, 1e8},
       {"depth", ParamType::integer, 5, "d: rows (delta = e^-d)", 1, 32},
       {"half_life", ParamType::duration, "0s",
        "trending = counts decayed with this half-life (0: all-time counts)", 0, 1e7},
       {"cpu_workers", ParamType::integer, 1, "requests the app server works on at once", 1, 1e6},
       {"hash_ns", ParamType::real, 10.0, "cost model: ns per hash evaluation", 0, 1e9},
       {"access_ns", ParamType::real, 50.0,
        "cost model: ns per random memory access (a counter, a cache line of slots)", 0, 1e9},
       {"compare_ns", ParamType::real, 2.0,
        "cost model: ns per comparison (or slot read in a scan)", 0, 1e9}},
      {},
      {{"shift_topics", "the news moves on: from now on every key names another topic", {}},
       {"top",
        "the variant's top k now: top = {topic, estimate, count}, precision, recall (against "
        "the question's exact top k)",
        {}}},
      {{"events", MetricSpec::Kind::counter, "events counted"},
       {"memory_bytes", MetricSpec::Kind::gauge, "bytes of the counting structures"},
       {"topk_recall", MetricSpec::Kind::gauge,
        "share of the exact top k in the reported top k, when last measured"}},
      {{"events", Unit::count, "events (writes)"},
       {"queries", Unit::count, "top-k queries (reads)"},
       {"topics", Unit::count, "distinct topics seen"},
       {"memory_bytes", Unit::bytes, "bytes of the counting structures"},
       {"bytes_per_topic", Unit::number, "memory_bytes / topics"},
       {"topk_precision", Unit::fraction,
        "share of the reported top k whose true count is at least the true k-th"},
       {"topk_recall", Unit::fraction, "share of the true top k the reported top k holds"},
       {"mean_overestimate", Unit::number, "mean (estimate - count) over the topics seen"},
       {"within_bound", Unit::fraction, "share of the topics seen with an overestimate <= e/w N"},
       {"error_bound", Unit::number, "epsilon N = (e / w) N"},
       {"epsilon", Unit::fraction, "e / w"},
       {"delta", Unit::fraction, "e^-d: the bound may fail for this share of queries"},
       {"accesses_per_event", Unit::number, "random memory accesses per event"},
       {"compares_per_query", Unit::number, "comparisons per top-k query"},
       {"query_p99", Unit::seconds, "99th percentile latency of the top-k queries"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"exact_counts", Variant::exact_counts},
      {"count_min", Variant::count_min},
      {"count_min_cu", Variant::count_min_cu},
      {"count_min_decayed", Variant::count_min_decayed}};
  return std::make_unique<Trending>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
