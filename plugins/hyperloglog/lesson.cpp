// HyperLogLog: "how many unique visitors?" across the servers of a site.
//
//   problem:  exact_set      -> every server forwards each visitor id to one exact set:
//                               count = set.size(); memory grows with every new visitor
//                               (8 bytes a slot, at most 3/4 full: 11 to 21 bytes a visitor)
//             sum_of_servers -> each server counts its own visitors (a HyperLogLog each) and
//                               the dashboard adds the counts: a visitor who reached three
//                               servers is counted three times
//   fix:      hll            -> each server keeps a HyperLogLog of m registers (m bytes);
//                               count = estimate(register-wise max over the servers): a
//                               visitor counts once, relative standard error 1.04 / sqrt(m)
//                               (0.8% with 16 KiB), whatever the count
//             hll_raw        -> the same without the small-range correction: with few
//                               visitors the raw estimate is far too high (alpha m for none)
//
// Model: a write is a visit of visitor `key`, landing on a server chosen per visit (the same
// in every variant), so a returning visitor reaches several servers. A read asks for the
// number of unique visitors so far. The structure's work (hashes, random accesses, id
// comparisons, registers scanned by a merge or an estimate) is charged through the cost model
// (hash_ns, access_ns, compare_ns, scan_ns) on the app server (cpu_workers). An operation runs
// when its request arrives; its answer leaves after the queueing and the time its work costs.
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hll.hpp"

namespace {
using namespace hldlab;
using hll::Work;

enum class Variant { exact_set, sum_of_servers, hll_raw, hll };

/// What the structure's work costs in time.
struct CostModel {
  double hash_ns, access_ns, compare_ns, scan_ns;
  Time time(const Work& w) const {
    return round_time(
        static_cast<double>(w.hashes) * hash_ns + static_cast<double>(w.accesses) * access_ns +
        static_cast<double>(w.compares) * compare_ns + static_cast<double>(w.scanned) * scan_ns);
  }
};

class VisitorCount final : public System {
 public:
  VisitorCount(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        cost_{p.real("hash_ns"), p.real("access_ns"), p.real("compare_ns"), p.real("scan_ns")},
        server_salt_(ctx.salt("server of a visit")),
        hash_seed_(ctx.rng().next()),
        truth_(hash_seed_),
        visits_metric_(ctx.metric("visits")),
        estimate_metric_(ctx.metric("estimate")),
        memory_metric_(ctx.metric("memory_bytes")),
        cpu_(ctx, {.workers = p.integer<int>("cpu_workers")}, [this](Request& r) { finish(r); }) {
    const int precision = p.integer<int>("precision");
    if (variant_ == Variant::exact_set) {
      exact_.emplace(hash_seed_);
    } else {
      for (std::int64_t s = 0; s < p.integer("servers"); ++s) servers_.emplace_back(precision);
      merged_.emplace(precision);
    }
    servers_count_ = p.integer<std::uint64_t>("servers");
    memory_metric_.set(static_cast<double>(memory_bytes()));
  }

  void handle(const Request& r) override {
    Work work;
    if (r.op == Op::write) {
      visit(r, work);
    } else {
      ++queries_;
      estimate_metric_.set(count(work));
    }
    cpu_.submit(r, cost_.time(work));
  }

  Value call(const std::string&, const Value&) override {
    Work ignored;  // "count": an answer for the script, outside the traffic
    const double estimate = count(ignored);
    const auto visitors = static_cast<double>(truth_.size());
    return Map{{"estimate", estimate},
               {"visitors", static_cast<std::int64_t>(truth_.size())},
               {"relative_error", visitors > 0 ? (estimate - visitors) / visitors : 0.0},
               {"memory_bytes", static_cast<std::int64_t>(memory_bytes())}};
  }

  Map figures() const override {
    Work ignored;
    const double estimate = count(ignored);
    const auto visitors = static_cast<double>(truth_.size());
    const auto visits = static_cast<double>(visits_);
    Map f{{"visits", visits_},
          {"count_queries", queries_},
          {"visitors", static_cast<std::int64_t>(truth_.size())},
          {"estimate", estimate},
          {"relative_error", visitors > 0 ? (estimate - visitors) / visitors : 0.0},
          {"memory_bytes", static_cast<std::int64_t>(memory_bytes())},
          {"bytes_per_visitor", static_cast<double>(memory_bytes()) / std::max(1.0, visitors)},
          {"accesses_per_visit", visits > 0 ? static_cast<double>(visit_accesses_) / visits : 0.0},
          {"count_p99", to_seconds(count_latency_.quantile(0.99))}};
    if (!servers_.empty()) {
      f["registers"] = static_cast<std::int64_t>(servers_[0].registers());
      f["standard_error"] = hll::HyperLogLog::standard_error(servers_[0].registers());
    }
    return f;
  }

  void reset_stats() override {
    visits_ = queries_ = 0;
    visit_accesses_ = 0;
    count_latency_.reset();
  }

 private:
  void visit(const Request& r, Work& work) {
    ++visits_;
    visits_metric_.add(1);
    Work ignored;
    truth_.insert(r.key, ignored);
    const std::uint64_t accesses_before = work.accesses;
    if (exact_) {
      exact_->insert(r.key, work);
      memory_metric_.set(static_cast<double>(memory_bytes()));
    } else {
      const std::uint64_t server = Rng::hash(r.id ^ server_salt_) % servers_count_;
      ++work.hashes;
      servers_[server].add_hash(Rng::hash(r.key ^ hash_seed_), work);
    }
    visit_accesses_ += work.accesses - accesses_before;
  }

  /// The number of unique visitors the variant reports.
  double count(Work& work) const {
    switch (variant_) {
      case Variant::exact_set:
        ++work.accesses;
        return static_cast<double>(exact_->size());
      case Variant::sum_of_servers: {
        double sum = 0;
        for (const auto& s : servers_) sum += s.estimate(work);
        return sum;
      }
      case Variant::hll_raw:
      case Variant::hll:
        merged_->clear();
        for (const auto& s : servers_) merged_->merge(s, work);
        return variant_ == Variant::hll ? merged_->estimate(work) : merged_->raw_estimate(work);
    }
    return 0;
  }

  void finish(const Request& r) {
    if (r.op == Op::read) count_latency_.record(ctx_.now() - r.arrival);
    ctx_.complete(r, Outcome::ok);
  }

  std::size_t memory_bytes() const {
    if (exact_) return exact_->memory_bytes();
    std::size_t bytes = 0;
    for (const auto& s : servers_) bytes += s.memory_bytes();
    return bytes;  // the merge's scratch registers are transient
  }

  Variant variant_;
  Context& ctx_;
  CostModel cost_;
  std::uint64_t server_salt_, hash_seed_;
  std::uint64_t servers_count_ = 1;
  hll::IdSet truth_;  // every visitor seen, for the figures
  std::optional<hll::IdSet> exact_;
  std::vector<hll::HyperLogLog> servers_;
  mutable std::optional<hll::HyperLogLog> merged_;  // scratch of a count
  Metric& visits_metric_;
  Metric& estimate_metric_;
  Metric& memory_metric_;
  Server<Request> cpu_;
  Histogram count_latency_;
  std::int64_t visits_ = 0, queries_ = 0;
  std::uint64_t visit_accesses_ = 0;
};

LessonInfo info() {
  return {
      "hyperloglog",
      "HyperLogLog: unique visitors across servers in kilobytes, without double counting",
      "Counting unique visitors exactly means remembering every visitor: an exact set grows "
      "by 11 to 21 bytes per visitor, gigabytes for a large site's day. Counting per server "
      "and adding the counts double-counts every visitor who reached several servers.",
      "A HyperLogLog per server: m small registers (m bytes) estimate the distinct count with "
      "a relative standard error of 1.04/sqrt(m) (0.8% with 16 KiB) whatever the count. The "
      "servers' sketches merge by register-wise max, exactly as if one sketch had seen every "
      "visit, so nobody is counted twice. Below 2.5 m, linear counting on the empty registers "
      "corrects the raw estimate's bias.",
      {"Redis PFADD / PFCOUNT / PFMERGE (12 KiB per key, 0.81%)",
       "Google BigQuery APPROX_COUNT_DISTINCT and Presto/Trino approx_distinct (HyperLogLog++)",
       "Druid, Elasticsearch cardinality aggregation, Apache DataSketches",
       "Reddit's view counts (HyperLogLog in Redis)",
       "P. Flajolet et al., \"HyperLogLog: the analysis of a near-optimal cardinality "
       "estimation algorithm\", 2007; S. Heule et al., \"HyperLogLog in Practice\", 2013"},
      {{"exact_set", true, "one exact set of every visitor id: exact, memory grows with visitors"},
       {"sum_of_servers", true, "a HyperLogLog per server, counts added: double counting"},
       {"hll_raw", true,
        "HyperLogLogs merged by register max, raw estimate (no small-range "
        "correction)"},
       {"hll", false, "HyperLogLogs merged by register max, linear counting below 2.5 m"}},
      {{"servers", ParamType::integer, 10, "web servers a visit may land on", 1, 1000},
       {"precision", ParamType::integer, 14, "p: m = 2^p registers per HyperLogLog", 4, 18},
       {"cpu_workers", ParamType::integer, 1, "requests the app server works on at once", 1, 1e6},
       {"hash_ns", ParamType::real, 10.0, "cost model: ns to hash an id", 0, 1e9},
       {"access_ns", ParamType::real, 50.0,
        "cost model: ns per random memory access (a register, a cache line of slots)", 0, 1e9},
       {"compare_ns", ParamType::real, 2.0, "cost model: ns per id comparison", 0, 1e9},
       {"scan_ns", ParamType::real, 0.5,
        "cost model: ns per register read in a sequential pass (merge, estimate)", 0, 1e9}},
      {},
      {{"count",
        "the unique-visitor count now: estimate, visitors (true), relative_error, "
        "memory_bytes",
        {}}},
      {{"visits", MetricSpec::Kind::counter, "visits recorded"},
       {"estimate", MetricSpec::Kind::gauge, "unique visitors, as the last count query answered"},
       {"memory_bytes", MetricSpec::Kind::gauge, "bytes of the counting structures"}},
      {{"visits", Unit::count, "visits (writes)"},
       {"count_queries", Unit::count, "unique-visitor queries (reads)"},
       {"visitors", Unit::count, "true number of unique visitors"},
       {"estimate", Unit::number, "unique visitors as the variant counts them"},
       {"relative_error", Unit::number, "(estimate - visitors) / visitors"},
       {"standard_error", Unit::fraction, "1.04 / sqrt(m): HyperLogLog's relative standard error"},
       {"registers", Unit::count, "m: registers per HyperLogLog"},
       {"memory_bytes", Unit::bytes, "bytes of the counting structures (all servers)"},
       {"bytes_per_visitor", Unit::number, "memory_bytes / visitors"},
       {"accesses_per_visit", Unit::number, "random memory accesses per visit"},
       {"count_p99", Unit::seconds, "99th percentile latency of the count queries"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"exact_set", Variant::exact_set},
      {"sum_of_servers", Variant::sum_of_servers},
      {"hll_raw", Variant::hll_raw},
      {"hll", Variant::hll}};
  return std::make_unique<VisitorCount>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
