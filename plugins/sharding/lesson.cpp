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
//             done when the last part is. Each shard is a queueing server (hldlab::Server); a
//             part takes request.service (a scan's parts: request.service times an
//             independent Exp(1) factor each).
//   measured: share of writes on the busiest shard, share of writes that hit the same shard as
//             the write before (1 for range on a monotonic key, ~1/n for hash), per-shard load
//             max/mean, fan-out per scan, data moved by add_shard, records per shard max/mean; P99
//             by the runtime.
#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/placement.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;

enum class Scheme { range, hash, consistent };

/// A request waiting for its parts: one per shard it touches.
struct Query {
  Request request;
  int remaining = 0;
};

/// One part of a query, queued on or served by one shard.
struct Part {
  SlotHandle query;
  Time enqueued = 0;
};

struct Shard {
  Shard(Context& ctx, int workers, Server<Part>::Done done)
      : server(ctx, {.workers = workers}, std::move(done)) {}
  Server<Part> server;
  Histogram latencies;      // of its parts: queueing + service
  std::int64_t served = 0;  // parts, since the last reset_stats
  std::int64_t writes = 0;
  std::uint64_t seen = 0;  // scan in which this shard was last counted (fan-out, no allocation)
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
        records_(p.integer<std::uint64_t>("records")),
        scan_share_(p.real("scan_share")),
        scan_length_(p.integer<std::uint64_t>("scan_length")),
        vnodes_(p.integer<std::uint32_t>("vnodes")),
        workers_(p.integer<int>("workers")),
        shards_metric_(ctx.metric("shards")),
        moved_metric_(ctx.metric("records_moved")) {
    const auto n = p.integer<std::uint32_t>("shards");
    for (std::uint32_t i = 0; i < n; ++i) {
      new_shard();
      ranges_.push_back({records_ * i / n, i});  // even split of the existing keys
    }
    rebuild();
  }

  void handle(const Request& r) override {
    const SlotHandle q = queries_.acquire();
    queries_[q] = {r, 1};
    if (r.op == Op::write) {
      const std::uint32_t s = shard_of(records_++);  // auto-increment: the newest key
      ++shards_[s].writes;
      same_shard_writes_ += writes_ > 0 && s == last_write_shard_;
      last_write_shard_ = s;
      ++writes_;
      return enqueue(s, q, r.service);
    }
    const std::uint64_t start = r.key % records_;
    // Identical in every system: decided by the request id, not by a system's random stream.
    const bool scan =
        static_cast<double>(Rng::hash(r.id ^ 0x5343414eULL) >> 11) * 0x1.0p-53 < scan_share_;
    if (!scan) return enqueue(shard_of(start), q, r.service);
    ++scans_;
    ++scan_round_;
    const std::uint64_t end = std::min(start + scan_length_, records_);
    touched_.clear();  // reused: no allocation per request
    for (std::uint64_t k = start; k < end; ++k) {
      if (scheme_ == Scheme::range && k > start) {  // jump to the next range boundary
        const auto next = range_after(k - 1);
        if (next == ranges_.end() || next->lower >= end) break;
        k = next->lower;
      }
      const std::uint32_t s = shard_of(k);
      if (shards_[s].seen != scan_round_) shards_[s].seen = scan_round_, touched_.push_back(s);
    }
    fanout_ += static_cast<std::int64_t>(touched_.size());
    queries_[q].remaining = static_cast<int>(touched_.size());
    for (std::uint32_t s : touched_) {
      // Each shard's part varies on its own: request.service times an Exp(1) factor drawn from
      // (request id, shard), so every system draws the same factors.
      const double u = static_cast<double>((Rng::hash(r.id * 1024 + s) >> 11) + 1) * 0x1.0p-53;
      enqueue(s, q, scale_time(r.service, -std::log(u)));
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "add_shard") return add_shard();
    if (op == "shard_of")
      return static_cast<std::int64_t>(shard_of(static_cast<std::uint64_t>(args["key"].as_int())));
    List out;  // "shards"
    const auto records = records_per_shard();
    for (std::uint32_t s = 0; s < shards_.size(); ++s)
      out.push_back(
          Map{{"id", static_cast<std::int64_t>(s)},
              {"records", records[s]},
              {"served", shards_[s].served},
              {"writes", shards_[s].writes},
              {"p99", to_seconds(shards_[s].latencies.quantile(0.99))},
              {"outstanding", static_cast<std::int64_t>(shards_[s].server.outstanding())}});
    return out;
  }

  void inject(const std::string&, const Value& p) override {  // slow_shard
    const auto s = p["shard"].as_int();
    if (s < 0 || s >= static_cast<std::int64_t>(shards_.size()))
      throw std::invalid_argument("shard " + std::to_string(s) + " does not exist (0.." +
                                  std::to_string(shards_.size() - 1) + ")");
    shards_[static_cast<std::size_t>(s)].server.set_slow(p["factor"].as_double());
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

  void reset_stats() override {
    for (Shard& s : shards_) {
      s.latencies.reset();
      s.served = s.writes = 0;
    }
    writes_ = same_shard_writes_ = scans_ = fanout_ = 0;
    moved_ = 0;
  }

 private:
  void new_shard() {
    const auto id = static_cast<std::uint32_t>(shards_.size());
    shards_.emplace_back(ctx_, workers_, [this, id](Part& part) { part_done(id, part); });
    ids_.push_back(id);
  }

  void rebuild() {
    if (scheme_ == Scheme::consistent) ring_.build(ids_, vnodes_);
    shards_metric_.set(static_cast<double>(shards_.size()));
  }

  /// The first range starting above `key`.
  std::vector<Range>::const_iterator range_after(std::uint64_t key) const {
    return std::upper_bound(ranges_.begin(), ranges_.end(), key,
                            [](std::uint64_t k, const Range& g) { return k < g.lower; });
  }

  std::uint32_t shard_of(std::uint64_t key) const {
    std::uint64_t steps = 0;
    switch (scheme_) {
      case Scheme::range:
        return std::prev(range_after(key))->shard;
      case Scheme::hash:
        return static_cast<std::uint32_t>(placement::hash_key(key) % shards_.size());
      case Scheme::consistent:
        return ring_.lookup(placement::hash_key(key), steps);
    }
    return 0;
  }

  /// Records in range i: [lower, next lower), cut at the number of records.
  std::uint64_t range_size(std::size_t i) const {
    const std::uint64_t lo = std::min(ranges_[i].lower, records_);
    const std::uint64_t hi =
        i + 1 < ranges_.size() ? std::min(ranges_[i + 1].lower, records_) : records_;
    return hi - lo;
  }

  std::vector<std::int64_t> records_per_shard() const {
    std::vector<std::int64_t> count(shards_.size(), 0);
    if (scheme_ == Scheme::range) {
      for (std::size_t i = 0; i < ranges_.size(); ++i)
        count[ranges_[i].shard] += static_cast<std::int64_t>(range_size(i));
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
      for (std::size_t i = 0; i < ranges_.size(); ++i)
        if (range_size(i) >= range_size(biggest)) biggest = i;
      const std::uint64_t size = range_size(biggest);
      const std::uint64_t middle = std::min(ranges_[biggest].lower, records_) + size / 2;
      moved = size - size / 2;
      new_shard();
      ranges_.insert(ranges_.begin() + static_cast<std::ptrdiff_t>(biggest) + 1, Range{middle, id});
    } else {
      std::vector<std::uint32_t> before(records_);
      for (std::uint64_t k = 0; k < records_; ++k) before[k] = shard_of(k);
      new_shard();
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

  void enqueue(std::uint32_t shard, SlotHandle q, Time service) {
    shards_[shard].server.submit(Part{q, ctx_.now()}, service);
  }

  void part_done(std::uint32_t shard, const Part& part) {
    Shard& s = shards_[shard];
    s.latencies.record(ctx_.now() - part.enqueued);
    ++s.served;
    if (--queries_[part.query].remaining > 0) return;
    ctx_.complete(queries_[part.query].request, Outcome::ok);
    queries_.release(part.query);
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
  std::deque<Shard> shards_;
  std::vector<std::uint32_t> ids_;
  std::vector<Range> ranges_;  // range: sorted by lower bound; the last one is open-ended
  placement::Ring ring_;
  SlotPool<Query> queries_;
  std::vector<std::uint32_t> touched_;
  std::uint64_t scan_round_ = 0;
  std::int64_t writes_ = 0, same_shard_writes_ = 0, scans_ = 0, fanout_ = 0;
  std::uint32_t last_write_shard_ = 0;
  double moved_ = 0;
};

LessonInfo info() {
  return {
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
       {"hash", false, "hash(key) % shards: even, but range queries fan out, resharding moves all"},
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
       {"records_moved", MetricSpec::Kind::counter, "records moved by add_shard"}},
      {{"write_max_share", Unit::fraction, "writes on the busiest shard / all writes"},
       {"same_shard_writes", Unit::fraction,
        "writes on the same shard as the write before (1: monotonic key on ranges)"},
       {"load_max_mean", Unit::number, "parts served by the busiest shard / mean"},
       {"fanout", Unit::number, "shards a range scan touches, on average"},
       {"moved", Unit::fraction, "records the last add_shard moved"},
       {"data_max_mean", Unit::number, "records on the fullest shard / mean"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Scheme> schemes[] = {
      {"range", Scheme::range}, {"hash", Scheme::hash}, {"consistent", Scheme::consistent}};
  return std::make_unique<Sharded>(variant_value(variant, schemes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
