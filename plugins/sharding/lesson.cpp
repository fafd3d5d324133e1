// Sharding: splitting one table over several servers, and choosing the partition key.
//
//   problem:  range sharding on a monotonic key (auto-increment id, timestamp):
//             shard_of(key) = the range containing key; every new row has the biggest key so far,
//             so the last shard takes every write while the others idle: one hot shard, its
//             queue grows, P99 explodes.
//   fix:      hash(key) % n   -> writes spread evenly, but a range query (keys a..b) must ask
//                                every shard and wait for the slowest (fan-out), and adding a
//                                shard moves n/(n+1) of the data;
//             consistent hash -> as even, and adding a shard moves only ~1/(n+1) of the data.
//             (Range sharding keeps range queries on one shard: the trade-off is the key.)
//   model:    `records` rows exist with keys 0..records-1. A write inserts the next key
//             (auto-increment). A read is a point read of an existing key, or with probability
//             scan_share a scan of scan_length consecutive keys: one part per shard it touches,
//             done when the last part is. A part queues on its shard for request.service (a
//             scan's parts: request.service times an independent Exp(1) factor each).
//   measured: share of writes on the busiest shard, share of writes that hit the same shard as
//             the write before (1 for range on a monotonic key, ~1/n for hash), per-shard load
//             max/mean, fan-out per scan, data moved by add_shard, records per shard max/mean; P99
//             by the runtime.
#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "hldlab/placement.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Scheme { range, hash, consistent };

/// One part of a request, waiting on or served by one shard.
struct Part {
  std::uint32_t query = 0;
  Time service = 0;
  Time enqueued = 0;
};

/// Latencies of one shard's parts (queueing + service) in log buckets of 2^(1/8) (~9% wide).
class PartLatencies {
 public:
  void record(Time latency) {
    const double ns = std::max(1.0, static_cast<double>(latency));
    const auto b = static_cast<std::size_t>(std::min(8.0 * std::log2(ns), kBuckets - 1.0));
    ++counts_[b];
    ++total_;
  }
  /// Upper edge of the bucket holding quantile q, in seconds (0 when empty).
  double quantile(double q) const {
    std::int64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b)
      if ((seen += counts_[b]) > 0 && static_cast<double>(seen) >= q * static_cast<double>(total_))
        return std::exp2(static_cast<double>(b + 1) / 8.0) * 1e-9;
    return 0;
  }

 private:
  static constexpr std::size_t kBuckets = 8 * 48;  // up to 2^48 ns (~78 hours)
  std::array<std::int64_t, kBuckets> counts_{};
  std::int64_t total_ = 0;
};

struct Shard {
  int busy = 0;
  double slow_factor = 1;
  std::deque<Part> queue;
  std::int64_t served = 0;  // parts
  std::int64_t writes = 0;
  std::uint64_t seen = 0;  // scan in which this shard was last counted (fan-out, no allocation)
  PartLatencies latencies;
};

struct Query {
  Request request;
  int remaining = 0;
};

/// A key range owned by a shard: [lower, next range's lower).
struct Range {
  std::uint64_t lower = 0;
  std::uint32_t shard = 0;
};

class Sharded final : public System {
 public:
  Sharded(Scheme scheme, const Params& p, Context& ctx)
      : scheme_(scheme),
        ctx_(ctx),
        records_(static_cast<std::uint64_t>(p.integer("records"))),
        scan_share_(p.real("scan_share")),
        scan_length_(static_cast<std::uint64_t>(p.integer("scan_length"))),
        vnodes_(static_cast<std::uint32_t>(p.integer("vnodes"))),
        workers_(static_cast<int>(p.integer("workers"))),
        shards_metric_(ctx.metric("shards")),
        moved_metric_(ctx.metric("records_moved")) {
    const auto n = static_cast<std::uint32_t>(p.integer("shards"));
    shards_.resize(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      ids_.push_back(i);
      ranges_.push_back({records_ * i / n, i});  // even split of the existing keys
    }
    rebuild();
  }

  void handle(const Request& r) override {
    const std::uint32_t q = new_query(r);
    if (r.op == Op::write) {
      const std::uint32_t s = shard_of(records_++);  // auto-increment: the newest key
      ++shards_[s].writes;
      same_shard_writes_ += writes_ > 0 && s == last_write_shard_;
      last_write_shard_ = s;
      ++writes_;
      return enqueue(s, q);
    }
    const std::uint64_t start = r.key % records_;
    // Identical in every system: decided by the request id, not by a system's random stream.
    const bool scan =
        static_cast<double>(Rng::hash(r.id ^ 0x5343414eULL) >> 11) * 0x1.0p-53 < scan_share_;
    if (!scan) return enqueue(shard_of(start), q);
    ++scans_;
    ++scan_round_;
    const std::uint64_t end = std::min(start + scan_length_, records_);
    std::vector<std::uint32_t>& touched = touched_;  // reused: no allocation per request
    touched.clear();
    for (std::uint64_t k = start; k < end; ++k) {
      if (scheme_ == Scheme::range && k > start) {  // jump to the next range boundary
        const auto next =
            std::upper_bound(ranges_.begin(), ranges_.end(), k - 1,
                             [](std::uint64_t key, const Range& g) { return key < g.lower; });
        if (next == ranges_.end() || next->lower >= end) break;
        k = next->lower;
      }
      const std::uint32_t s = shard_of(k);
      if (shards_[s].seen != scan_round_) shards_[s].seen = scan_round_, touched.push_back(s);
    }
    fanout_ += static_cast<std::int64_t>(touched.size());
    queries_[q].remaining = static_cast<int>(touched.size());
    for (std::uint32_t s : touched) {
      // Each shard's part varies on its own: request.service times an Exp(1) factor drawn from
      // (request id, shard), so every system draws the same factors.
      const double u = static_cast<double>((Rng::hash(r.id * 1024 + s) >> 11) + 1) * 0x1.0p-53;
      enqueue(s, q, static_cast<Time>(static_cast<double>(r.service) * -std::log(u)));
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "add_shard") return add_shard();
    if (op == "shard_of")
      return static_cast<std::int64_t>(shard_of(static_cast<std::uint64_t>(args["key"].as_int())));
    List out;  // "shards"
    const auto records = records_per_shard();
    for (std::uint32_t s = 0; s < shards_.size(); ++s)
      out.push_back(Map{
          {"id", static_cast<std::int64_t>(s)},
          {"records", records[s]},
          {"served", shards_[s].served},
          {"writes", shards_[s].writes},
          {"p99", shards_[s].latencies.quantile(0.99)},
          {"outstanding", shards_[s].busy + static_cast<std::int64_t>(shards_[s].queue.size())}});
    return out;
  }

  void inject(const std::string&, const Value& p) override {  // slow_shard
    const auto s = p["shard"].as_int();
    if (s < 0 || s >= static_cast<std::int64_t>(shards_.size()))
      throw std::invalid_argument("shard " + std::to_string(s) + " does not exist (0.." +
                                  std::to_string(shards_.size() - 1) + ")");
    shards_[static_cast<std::size_t>(s)].slow_factor = p["factor"].as_double();
  }

  Map figures() const override {
    std::int64_t most_writes = 0, most_served = 0, served = 0;
    for (const Shard& s : shards_) {
      most_writes = std::max(most_writes, s.writes);
      most_served = std::max(most_served, s.served);
      served += s.served;
    }
    const auto n = static_cast<double>(shards_.size());
    const auto records = records_per_shard();
    const double most_records =
        static_cast<double>(*std::max_element(records.begin(), records.end()));
    return {{"write_max_share", writes_ > 0 ? static_cast<double>(most_writes) / writes_ : 0.0},
            {"same_shard_writes",
             writes_ > 1 ? static_cast<double>(same_shard_writes_) / (writes_ - 1) : 0.0},
            {"load_max_mean", served > 0 ? most_served / (served / n) : 0.0},
            {"fanout", scans_ > 0 ? static_cast<double>(fanout_) / scans_ : 0.0},
            {"moved", moved_},
            {"data_max_mean", most_records / (static_cast<double>(records_) / n)}};
  }

 private:
  void rebuild() {
    if (scheme_ == Scheme::consistent) ring_.build(ids_, vnodes_);
    shards_metric_.set(static_cast<double>(shards_.size()));
  }

  std::uint32_t shard_of(std::uint64_t key) const {
    std::uint64_t steps = 0;
    switch (scheme_) {
      case Scheme::range: {
        const auto next =
            std::upper_bound(ranges_.begin(), ranges_.end(), key,
                             [](std::uint64_t k, const Range& g) { return k < g.lower; });
        return std::prev(next)->shard;
      }
      case Scheme::hash:
        return static_cast<std::uint32_t>(placement::hash_key(key) % shards_.size());
      case Scheme::consistent:
        return ring_.lookup(placement::hash_key(key), steps);
    }
    return 0;
  }

  std::vector<std::int64_t> records_per_shard() const {
    std::vector<std::int64_t> count(shards_.size(), 0);
    if (scheme_ == Scheme::range) {
      for (std::size_t i = 0; i < ranges_.size(); ++i) {
        const std::uint64_t lo = std::min(ranges_[i].lower, records_);
        const std::uint64_t hi =
            i + 1 < ranges_.size() ? std::min(ranges_[i + 1].lower, records_) : records_;
        count[ranges_[i].shard] += static_cast<std::int64_t>(hi - lo);
      }
    } else {
      for (std::uint64_t k = 0; k < records_; ++k) ++count[shard_of(k)];
    }
    return count;
  }

  /// Add a shard. Range: split the range holding the most records at its middle, the new shard
  /// takes the upper half. Hash and consistent: re-place every record and count the moves.
  Value add_shard() {
    const auto id = static_cast<std::uint32_t>(shards_.size());
    std::uint64_t moved = 0;
    if (scheme_ == Scheme::range) {
      std::size_t biggest = 0;
      std::uint64_t biggest_size = 0;
      for (std::size_t i = 0; i < ranges_.size(); ++i) {
        const std::uint64_t lo = std::min(ranges_[i].lower, records_);
        const std::uint64_t hi =
            i + 1 < ranges_.size() ? std::min(ranges_[i + 1].lower, records_) : records_;
        if (hi - lo >= biggest_size) biggest = i, biggest_size = hi - lo;
      }
      const std::uint64_t middle = std::min(ranges_[biggest].lower, records_) + biggest_size / 2;
      moved = biggest_size - biggest_size / 2;
      shards_.emplace_back();
      ids_.push_back(id);
      ranges_.insert(ranges_.begin() + static_cast<std::ptrdiff_t>(biggest) + 1, Range{middle, id});
    } else {
      std::vector<std::uint32_t> before(records_);
      for (std::uint64_t k = 0; k < records_; ++k) before[k] = shard_of(k);
      shards_.emplace_back();
      ids_.push_back(id);
      rebuild();
      for (std::uint64_t k = 0; k < records_; ++k) moved += shard_of(k) != before[k];
    }
    rebuild();
    moved_ = static_cast<double>(moved) / static_cast<double>(records_);
    moved_metric_.add(static_cast<double>(moved));
    ctx_.log("add_shard " + std::to_string(id) + ": " + std::to_string(moved) + " of " +
             std::to_string(records_) + " records moved");
    return Map{{"shard", static_cast<std::int64_t>(id)},
               {"shards", static_cast<std::int64_t>(shards_.size())},
               {"moved", moved_},
               {"moved_records", static_cast<std::int64_t>(moved)}};
  }

  std::uint32_t new_query(const Request& r) {
    std::uint32_t q;
    if (free_.empty()) {
      q = static_cast<std::uint32_t>(queries_.size());
      queries_.emplace_back();
    } else {
      q = free_.back();
      free_.pop_back();
    }
    queries_[q].request = r;
    queries_[q].remaining = 1;
    return q;
  }

  void enqueue(std::uint32_t shard, std::uint32_t q) {
    enqueue(shard, q, queries_[q].request.service);
  }

  void enqueue(std::uint32_t shard, std::uint32_t q, Time service) {
    Shard& s = shards_[shard];
    const Part part{q, service, ctx_.now()};
    if (s.busy < workers_) return start(shard, part);
    s.queue.push_back(part);
  }

  void start(std::uint32_t shard, const Part& part) {
    Shard& s = shards_[shard];
    ++s.busy;
    const double work = static_cast<double>(part.service) * s.slow_factor;
    const Time done = ctx_.now() + static_cast<Time>(work);
    s.latencies.record(done - part.enqueued);
    ctx_.after(static_cast<Time>(work), [this, shard, q = part.query] { finish(shard, q); });
  }

  void finish(std::uint32_t shard, std::uint32_t q) {
    Shard& s = shards_[shard];
    --s.busy;
    ++s.served;
    if (--queries_[q].remaining == 0) {
      ctx_.complete(queries_[q].request, Outcome::ok);
      free_.push_back(q);
    }
    if (!s.queue.empty()) {
      const Part next = s.queue.front();
      s.queue.pop_front();
      start(shard, next);
    }
  }

  Scheme scheme_;
  Context& ctx_;
  std::uint64_t records_;  // keys 0..records_-1 exist; the next write takes records_
  double scan_share_;
  std::uint64_t scan_length_;
  std::uint32_t vnodes_;
  int workers_;
  Metric& shards_metric_;
  Metric& moved_metric_;
  std::vector<Shard> shards_;
  std::vector<std::uint32_t> ids_;
  std::vector<Range> ranges_;  // range: sorted by lower bound; the last one is open-ended
  placement::Ring ring_;
  std::vector<Query> queries_;
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> touched_;
  std::uint64_t scan_round_ = 0;
  std::int64_t writes_ = 0, same_shard_writes_ = 0, scans_ = 0, fanout_ = 0;
  std::uint32_t last_write_shard_ = 0;
  double moved_ = 0;
};

class Sharding final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const LessonInfo info{
        "sharding",
        "Sharding: choosing the partition key and scheme",
        "Range sharding on a monotonically increasing key (auto-increment id, timestamp) sends "
        "every new row to the last shard: one shard takes all the writes, its queue grows and "
        "P99 explodes while the other shards idle. Adding shards does not help.",
        "Hash the key: writes spread evenly. The price: a range query must ask every shard and "
        "wait for the slowest (fan-out), and hash % n moves almost all data when a shard is "
        "added; consistent hashing moves only ~1/(n+1). Or keep ranges but choose a key that is "
        "not monotonic.",
        {"MongoDB (ranged vs hashed shard keys; monotonic shard key warning)",
         "Bigtable / HBase (row-key hotspotting, salting)",
         "Cassandra / DynamoDB (hash partitioning)",
         "Vitess and Citus (hash-based sharding with resharding)"},
        {{"range", true, "contiguous key ranges per shard; new keys land on the last shard"},
         {"hash", false,
          "hash(key) % shards: even, but range queries fan out, resharding moves all"},
         {"consistent", false,
          "hash ring with virtual nodes: even, and adding a shard moves ~1/(n+1)"}},
        {{"shards", ParamType::integer, 8, "initial number of shards", 1, 1000},
         {"records", ParamType::integer, 100000, "existing records (keys 0..records-1)", 1, 1e7},
         {"scan_share", ParamType::real, 0.05, "share of reads that are range scans", 0, 1},
         {"scan_length", ParamType::integer, 100, "consecutive keys a range scan reads", 1, 1e7},
         {"vnodes", ParamType::integer, 100, "consistent: virtual points per shard", 1, 10000},
         {"workers", ParamType::integer, 1, "requests a shard serves at once", 1, 100000}},
        {{"slow_shard",
          "multiply one shard's service time (a fan-out waits for the slowest)",
          {{"shard", ParamType::integer, 0, "shard index", 0, 1e6},
           {"factor", ParamType::real, 10.0, "service time multiplier", 1e-6, 1e6}}}},
        {{"add_shard",
          "add a shard (range: split the biggest range); returns shard, shards, "
          "moved (fraction of records), moved_records",
          {}},
         {"shard_of",
          "the shard that owns a key",
          {{"key", ParamType::integer, Value(), "key", 0, 9.2e18}}},
         {"shards",
          "every shard: id, records, served (parts), writes, outstanding, p99 (of its parts, "
          "seconds)",
          {}}},
        {{"shards", MetricSpec::Kind::gauge, "number of shards"},
         {"records_moved", MetricSpec::Kind::counter, "records moved by add_shard"}}};
    return info;
  }

  std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                Context& ctx) const override {
    if (variant == "range") return std::make_unique<Sharded>(Scheme::range, params, ctx);
    if (variant == "hash") return std::make_unique<Sharded>(Scheme::hash, params, ctx);
    if (variant == "consistent") return std::make_unique<Sharded>(Scheme::consistent, params, ctx);
    throw std::invalid_argument("unknown variant " + variant);
  }
};

}  // namespace

HLDLAB_PLUGIN(Sharding)
