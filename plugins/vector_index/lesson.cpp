// Vector search: the k nearest neighbours of a query among N vectors (retrieval for RAG,
// recommendations, deduplication).
//
//   problem:  brute_force  -> for every vector: distance(query, v); keep the k smallest
//             exact, but N distance computations per query: cost grows with the corpus.
//   fix:      ivf          -> k-means splits the vectors into nlist lists; a query scans the
//                             lists of its nprobe nearest centroids: nlist + ~N nprobe / nlist
//                             distances. A neighbour just across a list boundary is missed.
//   fix:      hnsw         -> a layered proximity graph; greedy descent from the top layer,
//                             then a beam of ef_search candidates on the bottom layer:
//                             ~ef_search * log N distances, high recall.
//   filters:  hnsw_post_filter (naive) -> search without the filter, drop the results that do
//             not match: with a selectivity s only ~s * ef_search candidates survive, fewer
//             than k. hnsw / ivf / brute_force filter while searching: only matching vectors
//             enter the result, the walk goes on until it has k.
//
// Model: the data set (clustered Gaussian vectors with a metadata category) is drawn from the
// lesson's random stream: the same for every variant. Each request is a query drawn near a
// cluster from (seed, request id); it runs on one of `workers` cores for query_overhead +
// distances * dim * ns_per_dimension (the cost model), and its recall@k is measured against
// the exact answer (measuring costs no virtual time). The workload's service time is not used.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ann.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;
using ann::Hnsw;
using ann::Neighbor;

enum class Index { brute_force, ivf, hnsw, hnsw_post_filter };

/// What one query found and cost.
struct Answer {
  double recall = 0;
  std::uint64_t distances = 0;
  bool short_result = false;  // fewer than k results
};

class VectorIndex final : public System {
 public:
  VectorIndex(Index index, const Params& p, Context& ctx)
      : index_(index),
        ctx_(ctx),
        k_(p.integer<std::size_t>("k")),
        nprobe_(p.integer<int>("nprobe")),
        ef_search_(p.integer<int>("ef_search")),
        filtered_share_(p.real("filtered_share")),
        ns_per_dimension_(p.real("ns_per_dimension")),
        query_overhead_(p.duration("query_overhead")),
        query_salt_(ctx.salt("query")),
        distances_metric_(ctx.metric("distance_computations")),
        recall_metric_(ctx.metric("recall")),
        short_metric_(ctx.metric("short_results")),
        cores_(ctx, {.workers = p.integer<int>("workers")},
               [this](Request& r) { ctx_.complete(r, Outcome::ok); }) {
    // The data set first, from the shared stream: identical in every variant.
    data_ = ann::Dataset::clustered(p.integer<std::size_t>("vectors"), p.integer<int>("dim"),
                                    p.integer<int>("clusters"), p.real("spread"),
                                    p.integer<int>("categories"), ctx.rng());
    query_.resize(static_cast<std::size_t>(data_.dim));
    Rng build_rng(ctx.rng().next());
    if (index_ == Index::ivf)
      ivf_.build(data_, p.integer<int>("nlist"), p.integer<int>("kmeans_iterations"), build_rng);
    if (index_ == Index::hnsw || index_ == Index::hnsw_post_filter)
      hnsw_.build(data_, p.integer<int>("m"), p.integer<int>("ef_construction"), build_rng);
    ctx.metric("index_bytes").set(index_bytes());
  }

  void handle(const Request& r) override {
    Rng draw(Rng::hash(r.id ^ query_salt_));
    const std::int32_t category = draw_query(draw, filtered_share_);
    const Answer a = answer(category, nprobe_, ef_search_);
    distances_.record(static_cast<std::int64_t>(a.distances));
    distances_metric_.add(static_cast<double>(a.distances));
    recall_sum_ += a.recall;
    ++queries_;
    if (category != ann::kAnyCategory) filtered_recall_sum_ += a.recall, ++filtered_;
    if (a.short_result) ++short_results_, short_metric_.add(1);
    recall_metric_.set(recall_sum_ / static_cast<double>(queries_));
    cores_.submit(r, search_time(static_cast<double>(a.distances)));
  }

  Value call(const std::string& op, const Value& args) override {
    // "evaluate": a fixed set of queries (the same in every variant) at given search
    // parameters; nothing is recorded. For recall-cost curves.
    if (op != "evaluate") return System::call(op, args);
    const auto queries = args["queries"].as_int();
    const auto nprobe = args["nprobe"].as_int(), ef = args["ef_search"].as_int();
    const bool filtered = args["filtered"].as_bool();
    const std::uint64_t salt = ctx_.salt("evaluate");
    double recall_sum = 0, distance_sum = 0;
    for (std::int64_t i = 0; i < queries; ++i) {
      Rng draw(Rng::hash(static_cast<std::uint64_t>(i) ^ salt));
      const std::int32_t category = draw_query(draw, filtered ? 1.0 : 0.0);
      const Answer a = answer(category, nprobe > 0 ? static_cast<int>(nprobe) : nprobe_,
                              ef > 0 ? static_cast<int>(ef) : ef_search_);
      recall_sum += a.recall;
      distance_sum += static_cast<double>(a.distances);
    }
    const double n = static_cast<double>(queries), distances = distance_sum / n;
    return Map{{"recall", recall_sum / n},
               {"distances", distances},
               {"search_seconds", to_seconds(search_time(distances))},
               {"qps_per_core", 1 / to_seconds(search_time(distances))}};
  }

  Map figures() const override {
    const double n = static_cast<double>(std::max<std::int64_t>(queries_, 1));
    Map f{{"recall", recall_sum_ / n},
          {"distances_per_query", distances_.mean()},
          {"distances_p99", static_cast<double>(distances_.quantile(0.99))},
          {"search_seconds", to_seconds(search_time(distances_.mean()))},
          {"bytes_per_vector", index_bytes() / static_cast<double>(data_.size)},
          {"build_distances", static_cast<std::int64_t>(build_distances())},
          {"build_seconds",
           to_seconds(search_time(static_cast<double>(build_distances())) - query_overhead_)},
          {"short_results", short_results_}};
    if (filtered_ > 0) f["filtered_recall"] = filtered_recall_sum_ / static_cast<double>(filtered_);
    return f;
  }

  void reset_stats() override {
    distances_.reset();
    recall_sum_ = filtered_recall_sum_ = 0;
    queries_ = filtered_ = short_results_ = 0;
  }

 private:
  /// Fill query_ with a point near a random cluster; with probability `filtered`, a filter on
  /// a random category (its category), else none.
  std::int32_t draw_query(Rng& draw, double filtered) {
    data_.point_near(draw, draw.below(static_cast<std::uint64_t>(data_.clusters)), query_.data());
    if (!draw.chance(filtered)) return ann::kAnyCategory;
    return static_cast<std::int32_t>(draw.below(static_cast<std::uint64_t>(data_.category_count)));
  }

  /// Search query_ with this variant's index; recall against the exact answer.
  Answer answer(std::int32_t category, int nprobe, int ef_search) {
    Answer a;
    std::uint64_t exact_work = 0;
    ann::brute_force(data_, query_.data(), k_, category, top_, truth_, exact_work);
    switch (index_) {
      case Index::brute_force:
        found_ = truth_;
        a.distances = exact_work;
        break;
      case Index::ivf:
        ivf_.search(query_.data(), k_, nprobe, category, top_, found_, a.distances);
        break;
      case Index::hnsw:
        hnsw_.search(query_.data(), k_, ef_search, category, Hnsw::Filter::during_search, found_,
                     a.distances);
        break;
      case Index::hnsw_post_filter:
        hnsw_.search(query_.data(), k_, ef_search, category, Hnsw::Filter::after_search, found_,
                     a.distances);
        break;
    }
    a.recall = ann::recall(truth_, found_);
    a.short_result = found_.size() < truth_.size();
    return a;
  }

  /// The cost model: a fixed overhead plus every distance computation, dim multiply-adds each.
  Time search_time(double distances) const {
    return query_overhead_ + round_time(distances * data_.dim * ns_per_dimension_);
  }
  std::uint64_t build_distances() const {
    if (index_ == Index::ivf) return ivf_.build_distances();
    if (index_ == Index::hnsw || index_ == Index::hnsw_post_filter) return hnsw_.build_distances();
    return 0;
  }
  /// The raw vectors (4 bytes a dimension) plus the index's own structures.
  double index_bytes() const {
    double bytes = static_cast<double>(data_.size) * data_.dim * sizeof(float);
    if (index_ == Index::ivf) bytes += ivf_.index_bytes();
    if (index_ == Index::hnsw || index_ == Index::hnsw_post_filter) bytes += hnsw_.index_bytes();
    return bytes;
  }

  Index index_;
  Context& ctx_;
  std::size_t k_;
  int nprobe_, ef_search_;
  double filtered_share_, ns_per_dimension_;
  Time query_overhead_;
  std::uint64_t query_salt_;
  Metric& distances_metric_;
  Metric& recall_metric_;
  Metric& short_metric_;
  ann::Dataset data_;
  ann::Ivf ivf_;
  Hnsw hnsw_;
  Server<Request> cores_;
  // Scratch, reused by every query.
  std::vector<float> query_;
  ann::TopK top_;
  std::vector<Neighbor> truth_, found_;
  // Statistics since the start or the last reset_stats.
  Histogram distances_;
  double recall_sum_ = 0, filtered_recall_sum_ = 0;
  std::int64_t queries_ = 0, filtered_ = 0, short_results_ = 0;
};

LessonInfo info() {
  return {
      "vector_index",
      "Vector search: brute-force k-NN -> IVF -> HNSW (recall against cost)",
      "Exact k-nearest-neighbour search compares the query with every vector: N distance "
      "computations per query, so latency and cores grow with the corpus. And a metadata "
      "filter applied after an approximate search (post-filtering) keeps only the few "
      "candidates that match: with a 10% filter most queries get fewer than k results.",
      "Approximate indexes trade a little recall for far less work. IVF clusters the vectors "
      "(k-means) and scans only the lists of the nprobe nearest centroids; HNSW walks a "
      "layered proximity graph with a beam of ef_search candidates and reaches high recall at "
      "the fewest distance computations. Filters belong inside the search: only matching "
      "vectors enter the result while the walk goes on.",
      {"FAISS (IndexFlat, IndexIVFFlat, IndexHNSWFlat)", "hnswlib, used by Chroma",
       "pgvector (ivfflat and hnsw index types)", "Elasticsearch / OpenSearch / Lucene HNSW",
       "Milvus, Qdrant, Weaviate (filtered HNSW)", "ann-benchmarks (Aumüller et al. 2018)"},
      {{"brute_force", true, "scan every vector: exact, N distance computations per query"},
       {"ivf", false, "k-means inverted lists; scan the nprobe nearest lists"},
       {"hnsw", false, "hierarchical navigable small world graph; filters applied during the walk"},
       {"hnsw_post_filter", true,
        "the same graph; a filter is applied to the ef_search results afterwards"}},
      {{"vectors", ParamType::integer, 2000, "vectors in the index (N)", 10, 1e7},
       {"dim", ParamType::integer, 32, "dimensions per vector", 1, 4096},
       {"clusters", ParamType::integer, 20, "Gaussian clusters the vectors are drawn from", 1, 1e6},
       {"spread", ParamType::real, 1.3,
        "standard deviation of a coordinate around its cluster centre (centres are N(0, 1))", 0,
        100},
       {"categories", ParamType::integer, 10,
        "metadata categories, uniform over the vectors (a filter keeps 1 of them)", 1, 65535},
       {"k", ParamType::integer, 10, "neighbours per query (recall@k)", 1, 1000},
       {"nlist", ParamType::integer, 40, "ivf: k-means lists", 1, 1e6},
       {"nprobe", ParamType::integer, 4, "ivf: lists scanned per query", 1, 1e6},
       {"kmeans_iterations", ParamType::integer, 8, "ivf: Lloyd iterations", 0, 1000},
       {"m", ParamType::integer, 12, "hnsw: links per vector per layer (2m on the bottom layer)", 2,
        1000},
       {"ef_construction", ParamType::integer, 80, "hnsw: beam width while inserting", 1, 1e5},
       {"ef_search", ParamType::integer, 32, "hnsw: beam width of a query (at least k)", 1, 1e5},
       {"filtered_share", ParamType::real, 0.0,
        "share of queries that carry a metadata filter (one category)", 0, 1},
       {"ns_per_dimension", ParamType::real, 0.5,
        "cost model: nanoseconds per dimension of one distance computation", 0, 1e6},
       {"query_overhead", ParamType::duration, "20us",
        "cost model: fixed time per query (parsing, result assembly)", 0, 60},
       {"workers", ParamType::integer, 4, "cores answering queries", 1, 100000}},
      {},
      {{"evaluate",
        "run a fixed query set (the same in every variant) at other search parameters, "
        "recording nothing; returns recall, distances, search_seconds, qps_per_core",
        {{"queries", ParamType::integer, 200, "queries", 1, 1e6},
         {"nprobe", ParamType::integer, 0, "ivf lists to scan (0: the system's nprobe)", 0, 1e6},
         {"ef_search", ParamType::integer, 0, "hnsw beam (0: the system's ef_search)", 0, 1e5},
         {"filtered", ParamType::boolean, false,
          "give every query the filter it draws (with probability filtered_share otherwise "
          "none)"}}}},
      {{"distance_computations", MetricSpec::Kind::counter, "distance computations by queries"},
       {"recall", MetricSpec::Kind::gauge, "mean recall@k of the queries so far"},
       {"short_results", MetricSpec::Kind::counter, "queries answered with fewer than k results"},
       {"index_bytes", MetricSpec::Kind::gauge, "memory of the vectors and the index"}},
      {{"recall", Unit::fraction, "mean recall@k against the exact (brute-force) answer"},
       {"filtered_recall", Unit::fraction, "mean recall@k of the filtered queries"},
       {"distances_per_query", Unit::number, "mean distance computations per query"},
       {"distances_p99", Unit::number, "99th percentile of distance computations per query"},
       {"search_seconds", Unit::seconds, "mean search time per query from the cost model"},
       {"bytes_per_vector", Unit::bytes, "memory per vector: the raw vector and its index share"},
       {"build_distances", Unit::count, "distance computations to build the index"},
       {"build_seconds", Unit::seconds, "build time from the cost model (one core)"},
       {"short_results", Unit::count, "queries answered with fewer than k results"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Index> indexes[] = {
      {"brute_force", Index::brute_force},
      {"ivf", Index::ivf},
      {"hnsw", Index::hnsw},
      {"hnsw_post_filter", Index::hnsw_post_filter}};
  return std::make_unique<VectorIndex>(variant_value(variant, indexes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
