// Cache problems: what goes wrong around a cache, and the standard fix for each.
//
// Every request goes: app server -> [local L1] -> cache node hash(key) % cache_nodes (one
// server with a fixed service time) -> on a miss, the database (finite workers, lognormal).
//
//   stampede:    naive:  entry expires -> every request in the next db-latency window misses
//                        and queries the db for the same key
//                single_flight:      miss -> if a load of k is in flight, wait for it
//                early_expiry:       hit -> recompute early with probability rising as expiry
//                                    nears: now - delta * beta * ln(rand) >= expiry (XFetch)
//                background_refresh: a refresher reloads a key read since its last load before
//                                    it expires; readers never see the expiry
//   penetration: naive:  keys absent from the db are never cached: every request is a query
//                null_cache:   cache "not found" for null_ttl (useless against random keys)
//                bloom_filter: a Bloom filter of existing keys answers "absent" without the db
//   hotspot:     naive:  the celebrity key lives on one cache node: it saturates
//                local_l1: each app server keeps hot keys for l1_ttl (jittered) in memory
//   avalanche:   naive:  keys loaded together (warm-up, restart) expire together
//                jittered_ttl: ttl * uniform(1 - jitter, 1 + jitter)
#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/lognormal_durations.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

constexpr Time kPeakWindow = milliseconds(100);
constexpr std::uint64_t kAttackSalt = 0xA77AC;

enum class Variant {
  naive,
  single_flight,
  early_expiry,
  background_refresh,
  null_cache,
  bloom_filter,
  local_l1,
  jittered_ttl
};

/// What the shared cache (and the loads in flight) know about one key.
struct KeyState {
  std::uint64_t key = 0;
  Time expires = 0;                   ///< valid while now < expires
  Time delta = 0;                     ///< how long the last load took (XFetch)
  std::uint32_t loading = 0;          ///< loads in flight
  SlotHandle waiters;                 ///< single flight: requests waiting for the load
  bool cached = false, null = false;  ///< null: cached "not found"
  bool read_since_load = false, refresh_scheduled = false;
};

struct Pending {
  Request request;
  SlotHandle next;  ///< the next request waiting for the same load
};

struct DbJob {
  KeyState* state = nullptr;
  SlotHandle waiter;  ///< the request waiting for it (none: a background refresh)
  Time submitted = 0;
  bool write = false;
};

class CacheTier final : public System {
 public:
  CacheTier(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        ttl_(p.duration("ttl")),
        null_ttl_(p.duration("null_ttl")),
        l1_ttl_(p.duration("l1_ttl")),
        jitter_(p.real("jitter")),
        beta_(p.real("beta")),
        refresh_at_(p.real("refresh_at")),
        existing_keys_(p.integer<std::uint64_t>("existing_keys")),
        node_service_(p.duration("node_service")),
        app_servers_(p.integer<std::uint32_t>("app_servers")),
        l1_size_(p.integer<std::uint32_t>("l1_capacity")),
        db_median_(p.duration("db_median")),
        db_time_(lognormal_durations(p, "db")),
        db_(ctx,
            {.workers = p.integer<int>("db_workers"),
             .queue_limit = p.integer<std::size_t>("db_queue_limit")},
            [this](DbJob& job) { db_done(job); }),
        db_queries_metric_(ctx.metric("db_queries")),
        dup_metric_(ctx.metric("duplicate_loads")),
        absent_metric_(ctx.metric("absent_key_queries")),
        node_lookups_(p.integer<std::size_t>("cache_nodes"), 0) {
    // A node refuses a lookup that would wait longer than node_max_wait.
    const auto node_queue = static_cast<std::size_t>(p.duration("node_max_wait") / node_service_);
    for (std::size_t i = 0; i < node_lookups_.size(); ++i)
      nodes_.emplace_back(ctx, Server<SlotHandle>::Options{.workers = 1, .queue_limit = node_queue},
                          [this, i](SlotHandle& h) { lookup(i, h); });
    if (variant_ == Variant::local_l1) l1_.assign(std::size_t{app_servers_} * l1_size_, L1Slot{});
    if (variant_ == Variant::bloom_filter) build_bloom(p.real("bloom_bits_per_key"));
  }

  void handle(const Request& in) override {
    Request r = in;
    if (attack_share_ > 0 && Rng::uniform_at(kAttackSalt, r.id, 0) < attack_share_) {
      r.key = existing_keys_ + 1 + (Rng::hash(r.id) >> 24);  // a random id that does not exist
      r.op = Op::read;
    }
    const SlotHandle h = pending_.acquire();
    pending_[h] = {r, {}};
    if (r.op == Op::write) return db_submit(state(r.key), h, true);
    if (variant_ == Variant::local_l1) {
      const L1Slot& l1 = l1_slot(r);
      if (l1.key == r.key && l1.expires > ctx_.now()) return finish(h, Outcome::hit);
    }
    if (variant_ == Variant::bloom_filter && !bloom_contains(r.key)) {
      ++bloom_rejections_;
      return finish(h, Outcome::ok);  // "not found", answered by the filter
    }
    // The hop to the cache node that owns the key.
    if (nodes_[Rng::hash(r.key) % nodes_.size()].submit(h, node_service_) == Admission::rejected)
      finish(h, Outcome::rejected);
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "penetration_attack") {
      attack_share_ = p["share"].as_double();
    } else if (fault == "crash") {
      for (auto& [key, s] : states_) s.cached = false;
      std::fill(l1_.begin(), l1_.end(), L1Slot{});
      ctx_.log("cache cluster restarted empty");
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "warm") {
      // Bulk-load keys [0, keys) at once (a deploy's warm-up script): no database queries.
      const auto n = static_cast<std::uint64_t>(args["keys"].as_int());
      for (std::uint64_t k = 0; k < n; ++k) {
        KeyState& s = state(k);
        s.cached = true;
        s.null = k >= existing_keys_;
        s.expires = ctx_.now() + lifetime(s.null ? null_ttl_ : ttl_);
        s.delta = db_median_;
        if (variant_ == Variant::background_refresh) schedule_refresh(s);
      }
      return static_cast<std::int64_t>(n);
    }
    std::int64_t cached = 0, nulls = 0;
    for (const auto& [key, s] : states_)
      if (s.cached && s.expires > ctx_.now()) ++cached, nulls += s.null;
    return Map{{"cached_keys", cached},
               {"cached_nulls", nulls},
               {"bloom_rejections", bloom_rejections_},
               {"bloom_bits", static_cast<std::int64_t>(bloom_.size() * 64)},
               {"db_queue", static_cast<std::int64_t>(db_.queued())}};
  }

  Map figures() const override {
    const auto hot = *std::max_element(node_lookups_.begin(), node_lookups_.end());
    const Time busy = hot * node_service_, span = ctx_.now() - stats_start_;
    return {
        {"db_queries", db_queries_},
        {"peak_db_qps",
         static_cast<double>(std::max(peak_window_, window_count_)) / to_seconds(kPeakWindow)},
        {"dup_loads", dup_loads_},
        {"expired_reads", expired_reads_},
        {"absent_db", absent_queries_},
        {"hot_node_util", span > 0 ? static_cast<double>(busy) / static_cast<double>(span) : 0.0}};
  }

  void reset_stats() override {
    db_queries_ = dup_loads_ = expired_reads_ = absent_queries_ = bloom_rejections_ = 0;
    window_count_ = peak_window_ = 0;
    std::fill(node_lookups_.begin(), node_lookups_.end(), 0);
    stats_start_ = ctx_.now();
  }

 private:
  struct L1Slot {
    std::uint64_t key = ~std::uint64_t{0};
    Time expires = 0;
  };

  L1Slot& l1_slot(const Request& r) {
    const std::size_t server = r.client % app_servers_;
    return l1_[server * l1_size_ + Rng::hash(r.key) % l1_size_];
  }

  /// `ttl` jittered by +-jitter.
  Time jittered(Time ttl) {
    return scale_time(ttl, 1 - jitter_ + 2 * jitter_ * ctx_.rng().uniform());
  }
  /// TTL as the variant applies it: jittered for jittered_ttl.
  Time lifetime(Time ttl) { return variant_ == Variant::jittered_ttl ? jittered(ttl) : ttl; }

  KeyState& state(std::uint64_t key) {
    KeyState& s = states_[key];  // references into an unordered_map stay valid
    s.key = key;
    return s;
  }

  void finish(SlotHandle h, Outcome outcome) {
    ctx_.complete(pending_[h].request, outcome);
    pending_.release(h);
  }

  /// The cache node looks the key up.
  void lookup(std::size_t node, SlotHandle h) {
    ++node_lookups_[node];
    KeyState& s = state(pending_[h].request.key);
    const Time now = ctx_.now();
    if (s.cached && now < s.expires) {
      s.read_since_load = true;
      if (variant_ == Variant::early_expiry && !s.null) {
        const double early =
            static_cast<double>(s.delta) * beta_ * -std::log(ctx_.rng().uniform_open());
        if (static_cast<double>(now) + early >= static_cast<double>(s.expires))
          return db_submit(s, h, false);  // this reader recomputes; the others still hit
      }
      fill_l1(h, s);
      return finish(h, Outcome::hit);
    }
    if (s.cached) ++expired_reads_;
    if (variant_ == Variant::single_flight && s.loading > 0) {
      pending_[h].next = s.waiters;
      s.waiters = h;
      return;
    }
    db_submit(s, h, false);
  }

  void fill_l1(SlotHandle h, const KeyState& s) {
    if (variant_ != Variant::local_l1 || s.null) return;
    L1Slot& l1 = l1_slot(pending_[h].request);
    l1.key = s.key;
    l1.expires = ctx_.now() + jittered(l1_ttl_);
  }

  // ---- background refresh --------------------------------------------------------------------

  void schedule_refresh(KeyState& s) {
    if (s.refresh_scheduled || s.null) return;
    s.refresh_scheduled = true;
    ctx_.after(scale_time(ttl_, refresh_at_), [this, state = &s] { refresh(*state); });
  }

  void refresh(KeyState& s) {
    s.refresh_scheduled = false;
    if (!s.read_since_load || s.loading > 0) return;  // cold keys are left to expire
    s.read_since_load = false;
    db_submit(s, {}, false);
  }

  // ---- the database ------------------------------------------------------------------------

  void db_submit(KeyState& s, SlotHandle waiter, bool write) {
    if (!write) {
      if (s.loading > 0) {
        ++dup_loads_;
        dup_metric_.add(1);
      }
      ++s.loading;
    }
    const DbJob job{&s, waiter, ctx_.now(), write};
    if (db_.submit(job, db_time_.sample_time(ctx_.rng())) == Admission::rejected) {
      // The database is overloaded: this request is turned away. (A single-flight load is only
      // submitted when none is in flight, so nobody waits on it yet.)
      if (!write) --s.loading;
      if (waiter) finish(waiter, Outcome::rejected);
      return;
    }
    ++db_queries_;
    db_queries_metric_.add(1);
    if (!write && s.key >= existing_keys_) {
      ++absent_queries_;
      absent_metric_.add(1);
    }
    if (const Time window = ctx_.now() / kPeakWindow; window != window_) {
      peak_window_ = std::max(peak_window_, window_count_);
      window_ = window;
      window_count_ = 0;
    }
    ++window_count_;
  }

  void db_done(const DbJob& job) {
    KeyState& s = *job.state;
    if (job.write) {
      s.cached = false;  // invalidate: the next read loads the new value
      return finish(job.waiter, Outcome::ok);
    }
    --s.loading;
    const bool exists = s.key < existing_keys_;
    if (exists || variant_ == Variant::null_cache) {
      s.cached = true;
      s.null = !exists;
      s.expires = ctx_.now() + lifetime(exists ? ttl_ : null_ttl_);
      s.delta = ctx_.now() - job.submitted;
      if (variant_ == Variant::background_refresh) schedule_refresh(s);
    }
    if (job.waiter) answer_load(job.waiter, s);
    for (SlotHandle h = s.waiters, next; h; h = next) {
      next = pending_[h].next;
      answer_load(h, s);
    }
    s.waiters = {};
  }

  void answer_load(SlotHandle h, const KeyState& s) {
    if (s.cached) fill_l1(h, s);
    finish(h, Outcome::miss);
  }

  // ---- Bloom filter of the existing keys -------------------------------------------------------

  void build_bloom(double bits_per_key) {
    const double bits = std::max(64.0, bits_per_key * static_cast<double>(existing_keys_));
    bloom_.assign(static_cast<std::size_t>(std::ceil(bits / 64)), 0);
    bloom_hashes_ = std::max(1, static_cast<int>(std::lround(bits_per_key * std::log(2.0))));
    for (std::uint64_t k = 0; k < existing_keys_; ++k)
      for_each_bloom_bit(k, [this](std::uint64_t bit) {
        bloom_[bit / 64] |= std::uint64_t{1} << (bit % 64);
        return true;
      });
  }
  bool bloom_contains(std::uint64_t key) const {
    return for_each_bloom_bit(
        key, [this](std::uint64_t bit) { return bloom_[bit / 64] >> (bit % 64) & 1; });
  }
  /// visit(bit) for the key's bloom_hashes_ bits (double hashing) while it returns true.
  template <class F>
  bool for_each_bloom_bit(std::uint64_t key, F&& visit) const {
    const std::uint64_t h = Rng::hash(key), step = (h >> 32) | 1;
    for (int i = 0; i < bloom_hashes_; ++i)
      if (!visit((h + static_cast<std::uint64_t>(i) * step) % (bloom_.size() * 64))) return false;
    return true;
  }

  Variant variant_;
  Context& ctx_;
  Time ttl_, null_ttl_, l1_ttl_;
  double jitter_, beta_, refresh_at_;
  std::uint64_t existing_keys_;
  Time node_service_;
  std::uint32_t app_servers_, l1_size_;
  Time db_median_;
  Distribution db_time_;
  Server<DbJob> db_;
  Metric &db_queries_metric_, &dup_metric_, &absent_metric_;

  std::deque<Server<SlotHandle>> nodes_;  // the shared cache's nodes (a Server stays in place)
  std::vector<std::int64_t> node_lookups_;
  std::vector<L1Slot> l1_;
  std::vector<std::uint64_t> bloom_;
  int bloom_hashes_ = 0;

  std::unordered_map<std::uint64_t, KeyState> states_;
  SlotPool<Pending> pending_;

  double attack_share_ = 0;
  Time stats_start_ = 0, window_ = 0;
  std::int64_t window_count_ = 0, peak_window_ = 0;
  std::int64_t db_queries_ = 0, dup_loads_ = 0, expired_reads_ = 0, absent_queries_ = 0,
               bloom_rejections_ = 0;
};

LessonInfo info() {
  return {
      "cache_problems",
      "Cache problems: stampede, penetration, hotspot, avalanche",
      "Stampede: when a hot key expires, every request until the reload lands misses and "
      "queries the database for the same key. Penetration: keys that do not exist are never "
      "cached, so every request for them reaches the database. Hotspot: a celebrity key lives "
      "on one cache node, which saturates. Avalanche: keys loaded together with the same TTL "
      "expire together and the database takes all their misses at once.",
      "Stampede: single-flight loading, probabilistic early expiration (XFetch) or background "
      "refresh. Penetration: cache the absence (null caching) or ask a Bloom filter of the "
      "existing keys first. Hotspot: a small local L1 cache in every app server with a short "
      "jittered TTL. Avalanche: jitter the TTL. Each fix variant applies one fix to the naive "
      "cache, so the script shows each problem with its naive and fixed variants.",
      {"Facebook memcache leases (stampede)", "Caffeine refreshAfterWrite (background refresh)",
       "Vattani et al. 2015, XFetch (early expiration)", "Redis + RedisBloom (penetration)",
       "Twitter / Weibo local caches for celebrity keys"},
      {{"naive", true, "cache-aside, fixed TTL, nothing else (suffers all four problems)"},
       {"single_flight", false,
        "stampede fix: one database load per key; other misses wait for it"},
       {"early_expiry", false, "stampede fix: XFetch probabilistic early recomputation"},
       {"background_refresh", false,
        "stampede fix: reload keys read since their last load before they expire"},
       {"null_cache", false, "penetration fix: cache 'not found' for null_ttl"},
       {"bloom_filter", false, "penetration fix: a Bloom filter of existing keys answers 'absent'"},
       {"local_l1", false, "hotspot fix: per-app-server L1 cache, short jittered TTL"},
       {"jittered_ttl", false, "avalanche fix: ttl * uniform(1 - jitter, 1 + jitter)"}},
      {{"ttl", ParamType::duration, "10s", "lifetime of a cached value", 1e-3, 1e6},
       {"jitter", ParamType::real, 0.2, "jittered_ttl and local_l1: relative TTL spread", 0, 0.99},
       {"null_ttl", ParamType::duration, "60s", "null_cache: lifetime of a cached 'not found'",
        1e-3, 1e6},
       {"beta", ParamType::real, 1.0,
        "early_expiry: eagerness (>1 recomputes earlier, a margin for load times that vary)", 1e-3,
        100},
       {"refresh_at", ParamType::real, 0.8,
        "background_refresh: reload at this fraction of the TTL", 0.01, 0.99},
       {"existing_keys", ParamType::integer, 100000,
        "keys [0, existing_keys) exist in the database", 1, 1e8},
       {"bloom_bits_per_key", ParamType::real, 10.0, "bloom_filter: bits per existing key", 1, 64},
       {"cache_nodes", ParamType::integer, 8, "nodes of the shared cache (key -> hash % nodes)", 1,
        10000},
       {"node_service", ParamType::duration, "10us", "time a cache node spends per lookup", 1e-9,
        1},
       {"node_max_wait", ParamType::duration, "100ms",
        "queueing at a node before it refuses (node_max_wait / node_service lookups)", 0, 3600},
       {"app_servers", ParamType::integer, 20, "app servers (request -> client % app_servers)", 1,
        10000},
       {"l1_capacity", ParamType::integer, 1024, "local_l1: entries per app server (direct-mapped)",
        1, 1e7},
       {"l1_ttl", ParamType::duration, "1s", "local_l1: lifetime of an L1 entry (jittered)", 1e-3,
        1e6},
       {"db_median", ParamType::duration, "20ms", "median database query time", 1e-6, 100},
       {"db_p99", ParamType::duration, "100ms", "99th percentile database query time (lognormal)",
        1e-6, 1000},
       {"db_workers", ParamType::integer, 32, "queries the database runs at once", 1, 1e6},
       {"db_queue_limit", ParamType::integer, 100000, "queued queries before the database refuses",
        0, 1e9}},
      {{"penetration_attack",
        "a share of the requests ask for random ids that do not exist (share 0 stops it)",
        {{"share", ParamType::real, 0.5, "fraction of requests replaced", 0, 1}}},
       {"crash", "the shared cache and every L1 restart empty (cold cache)", {}}},
      {{"warm",
        "load keys [0, keys) into the cache at once, without database queries",
        {{"keys", ParamType::integer, Value(), "number of keys", 0, 1e8}}},
       {"stats", "cached_keys, cached_nulls, bloom_rejections, bloom_bits, db_queue", {}}},
      {{"db_queries", MetricSpec::Kind::counter, "queries sent to the database"},
       {"duplicate_loads", MetricSpec::Kind::counter, "loads of a key already being loaded"},
       {"absent_key_queries", MetricSpec::Kind::counter,
        "database queries for keys that do not exist"}},
      {{"db_queries", Unit::count, "queries the database accepted"},
       {"peak_db_qps", Unit::per_second, "queries sent to the database, busiest 100 ms window"},
       {"dup_loads", Unit::count, "loads of a key started while another load of it was running"},
       {"expired_reads", Unit::count, "reads that found their key expired and waited for a reload"},
       {"absent_db", Unit::count, "queries for keys that do not exist"},
       {"hot_node_util", Unit::fraction, "busy share of the busiest cache node"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"naive", Variant::naive},
      {"single_flight", Variant::single_flight},
      {"early_expiry", Variant::early_expiry},
      {"background_refresh", Variant::background_refresh},
      {"null_cache", Variant::null_cache},
      {"bloom_filter", Variant::bloom_filter},
      {"local_l1", Variant::local_l1},
      {"jittered_ttl", Variant::jittered_ttl}};
  return std::make_unique<CacheTier>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
