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
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

constexpr std::uint32_t kNone = 0xFFFFFFFFu;
constexpr Time kPeakWindow = milliseconds(100);

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

/// @brief Open-addressing map from a key to a dense index (insert-only, grows by doubling).
class DenseIndex {
 public:
  DenseIndex() : slots_(1024, Slot{}) {}
  /// The index of `key`; `added` tells whether it was new (then it is size() - 1).
  std::uint32_t get(std::uint64_t key, bool& added) {
    std::size_t i = Rng::hash(key) & (slots_.size() - 1);
    for (; slots_[i].index != kNone; i = (i + 1) & (slots_.size() - 1))
      if (slots_[i].key == key) {
        added = false;
        return slots_[i].index;
      }
    added = true;
    slots_[i] = {key, size_++};
    if (2 * size_ > slots_.size()) grow();
    return size_ - 1;
  }
  std::uint32_t size() const { return size_; }

 private:
  struct Slot {
    std::uint64_t key = 0;
    std::uint32_t index = kNone;
  };
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.index == kNone) continue;
      std::size_t i = Rng::hash(s.key) & (slots_.size() - 1);
      while (slots_[i].index != kNone) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::uint32_t size_ = 0;
};

/// What the shared cache (and the loads in flight) know about one key.
struct KeyState {
  std::uint64_t key = 0;
  Time expires = 0;                   ///< valid while now < expires
  Time delta = 0;                     ///< how long the last load took (XFetch)
  std::uint32_t loading = 0;          ///< loads in flight
  std::uint32_t waiters = kNone;      ///< single flight: requests waiting for the load
  bool cached = false, null = false;  ///< null: cached "not found"
  bool read_since_load = false, refresh_scheduled = false;
};

struct Pending {
  Request request;
  std::uint32_t next = kNone;
};

struct DbJob {
  std::uint32_t state = 0;     ///< KeyState index
  std::uint32_t slot = kNone;  ///< waiting request (kNone: background refresh)
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
        existing_keys_(static_cast<std::uint64_t>(p.integer("existing_keys"))),
        node_service_(p.duration("node_service")),
        node_max_wait_(p.duration("node_max_wait")),
        app_servers_(static_cast<std::uint32_t>(p.integer("app_servers"))),
        l1_size_(static_cast<std::uint32_t>(p.integer("l1_capacity"))),
        db_workers_(static_cast<std::uint32_t>(p.integer("db_workers"))),
        db_queue_limit_(static_cast<std::size_t>(p.integer("db_queue_limit"))),
        db_median_(static_cast<double>(p.duration("db_median"))),
        db_queries_metric_(ctx.metric("db_queries")),
        dup_metric_(ctx.metric("duplicate_loads")),
        absent_metric_(ctx.metric("absent_key_queries")),
        node_busy_(static_cast<std::size_t>(p.integer("cache_nodes")), 0),
        node_ops_(node_busy_.size(), 0) {
    const double p99 = static_cast<double>(p.duration("db_p99"));
    if (p99 < db_median_) throw std::invalid_argument("db_p99 must be at least db_median");
    db_sigma_ = std::log(p99 / db_median_) / 2.3263478740408408;
    if (variant_ == Variant::local_l1) l1_.assign(std::size_t{app_servers_} * l1_size_, L1Slot{});
    if (variant_ == Variant::bloom_filter) build_bloom(p.real("bloom_bits_per_key"));
  }

  void handle(const Request& in) override {
    last_arrival_ = in.arrival;
    Request r = in;
    if (attack_share_ > 0 &&
        static_cast<double>(Rng::hash(r.id ^ 0xA77AC) >> 11) * 0x1.0p-53 < attack_share_) {
      r.key = existing_keys_ + 1 + (Rng::hash(r.id) >> 24);  // a random id that does not exist
      r.op = Op::read;
    }
    const std::uint32_t slot = acquire(r);
    if (r.op == Op::write) return db_submit(state_of(r.key), slot, true);
    if (variant_ == Variant::local_l1) {
      const L1Slot& l1 = l1_slot(r);
      if (l1.key == r.key && l1.expires > ctx_.now()) return finish(slot, Outcome::hit);
    }
    if (variant_ == Variant::bloom_filter && !bloom_contains(r.key)) {
      ++bloom_rejections_;
      return finish(slot, Outcome::ok);  // "not found", answered by the filter
    }
    // The hop to the cache node that owns the key: one server, fixed service time.
    const std::size_t node = Rng::hash(r.key) % node_busy_.size();
    const Time start = std::max(ctx_.now(), node_busy_[node]);
    if (start - ctx_.now() > node_max_wait_) return finish(slot, Outcome::rejected);
    node_busy_[node] = start + node_service_;
    ++node_ops_[node];
    ctx_.after(node_busy_[node] - ctx_.now(), [this, slot] { lookup(slot); });
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "penetration_attack") {
      attack_share_ = p["share"].as_double();
    } else if (fault == "crash") {
      for (KeyState& s : states_) s.cached = false;
      std::fill(l1_.begin(), l1_.end(), L1Slot{});
      ctx_.log("cache cluster restarted empty");
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "warm") {
      // Bulk-load keys [0, keys) at once (a deploy's warm-up script): no database queries.
      const auto n = static_cast<std::uint64_t>(args["keys"].as_int());
      for (std::uint64_t k = 0; k < n; ++k) {
        KeyState& s = states_[state_of(k)];
        s.cached = true;
        s.null = k >= existing_keys_;
        s.expires = ctx_.now() + lifetime(s.null ? null_ttl_ : ttl_);
        s.delta = static_cast<Time>(db_median_);
        if (variant_ == Variant::background_refresh) schedule_refresh(state_of(k));
      }
      return static_cast<std::int64_t>(n);
    }
    std::int64_t cached = 0, nulls = 0;
    for (const KeyState& s : states_)
      if (s.cached && s.expires > ctx_.now()) ++cached, nulls += s.null;
    return Map{{"cached_keys", cached},
               {"cached_nulls", nulls},
               {"bloom_rejections", bloom_rejections_},
               {"bloom_bits", static_cast<std::int64_t>(bloom_.size() * 64)},
               {"db_queue", static_cast<std::int64_t>(db_queue_.size())}};
  }

  Map figures() const override {
    double hot = 0;
    for (std::int64_t ops : node_ops_) hot = std::max(hot, static_cast<double>(ops));
    const double span = to_seconds(last_arrival_);
    return {{"db_queries", db_queries_},
            {"peak_db_qps",
             static_cast<double>(std::max(peak_window_, window_count_)) / to_seconds(kPeakWindow)},
            {"dup_loads", dup_loads_},
            {"absent_db", absent_queries_},
            {"hot_node_util", span > 0 ? hot * to_seconds(node_service_) / span : 0.0}};
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

  /// TTL as the variant applies it: jittered for jittered_ttl.
  Time lifetime(Time ttl) {
    if (variant_ != Variant::jittered_ttl) return ttl;
    const double factor = 1 - jitter_ + 2 * jitter_ * ctx_.rng().uniform();
    return static_cast<Time>(static_cast<double>(ttl) * factor);
  }

  std::uint32_t state_of(std::uint64_t key) {
    bool added = false;
    const std::uint32_t i = index_.get(key, added);
    if (added) states_.emplace_back().key = key;
    return i;
  }

  std::uint32_t acquire(const Request& r) {
    const std::uint32_t slot = pending_.acquire().index;
    pending_[slot].request = r;
    pending_[slot].next = kNone;
    return slot;
  }

  void finish(std::uint32_t slot, Outcome outcome) {
    ctx_.complete(pending_[slot].request, outcome);
    pending_.release(slot);
  }

  /// The cache node looks the key up.
  void lookup(std::uint32_t slot) {
    const std::uint32_t si = state_of(pending_[slot].request.key);
    KeyState& s = states_[si];
    const Time now = ctx_.now();
    if (s.cached && now < s.expires) {
      s.read_since_load = true;
      if (variant_ == Variant::early_expiry && !s.null) {
        const double early =
            static_cast<double>(s.delta) * beta_ * -std::log(ctx_.rng().uniform_open());
        if (static_cast<double>(now) + early >= static_cast<double>(s.expires))
          return db_submit(si, slot, false);  // this reader recomputes; the others still hit
      }
      fill_l1(slot, s);
      return finish(slot, Outcome::hit);
    }
    if (variant_ == Variant::single_flight && s.loading > 0) {
      pending_[slot].next = s.waiters;
      s.waiters = slot;
      return;
    }
    db_submit(si, slot, false);
  }

  void fill_l1(std::uint32_t slot, const KeyState& s) {
    if (variant_ != Variant::local_l1 || s.null) return;
    L1Slot& l1 = l1_slot(pending_[slot].request);
    l1.key = s.key;
    const double factor = 1 - jitter_ + 2 * jitter_ * ctx_.rng().uniform();
    l1.expires = ctx_.now() + static_cast<Time>(static_cast<double>(l1_ttl_) * factor);
  }

  // ---- background refresh --------------------------------------------------------------------

  void schedule_refresh(std::uint32_t si) {
    KeyState& s = states_[si];
    if (s.refresh_scheduled || s.null) return;
    s.refresh_scheduled = true;
    const Time at = static_cast<Time>(static_cast<double>(ttl_) * refresh_at_);
    ctx_.after(at, [this, si] { refresh(si); });
  }

  void refresh(std::uint32_t si) {
    KeyState& s = states_[si];
    s.refresh_scheduled = false;
    if (!s.read_since_load || s.loading > 0) return;  // cold keys are left to expire
    s.read_since_load = false;
    db_submit(si, kNone, false);
  }

  // ---- the database ------------------------------------------------------------------------

  void db_submit(std::uint32_t si, std::uint32_t slot, bool write) {
    KeyState& s = states_[si];
    ++db_queries_;
    db_queries_metric_.add(1);
    const Time bucket = ctx_.now() / kPeakWindow;
    if (bucket != window_) {
      peak_window_ = std::max(peak_window_, window_count_);
      window_ = bucket;
      window_count_ = 0;
    }
    ++window_count_;
    if (!write) {
      if (s.loading > 0) {
        ++dup_loads_;
        dup_metric_.add(1);
      }
      if (s.key >= existing_keys_) {
        ++absent_queries_;
        absent_metric_.add(1);
      }
      ++s.loading;
    }
    const DbJob job{si, slot, ctx_.now(), write};
    if (db_busy_ < db_workers_) return db_start(job);
    if (db_queue_.size() >= db_queue_limit_ && slot != kNone) {
      // The database is overloaded: this request is turned away. (A single-flight load is only
      // submitted when none is in flight, so nobody waits on it yet.)
      if (!write) --s.loading;
      return finish(slot, Outcome::rejected);
    }
    db_queue_.push_back(job);
  }

  void db_start(const DbJob& job) {
    ++db_busy_;
    const std::uint32_t index = jobs_.acquire().index;
    jobs_[index] = job;
    const double latency = db_median_ * std::exp(db_sigma_ * ctx_.rng().normal());
    ctx_.after(static_cast<Time>(latency), [this, index] { db_done(index); });
  }

  void db_done(std::uint32_t index) {
    const DbJob job = jobs_[index];
    jobs_.release(index);
    --db_busy_;
    KeyState& s = states_[job.state];
    if (job.write) {
      s.cached = false;  // invalidate: the next read loads the new value
      finish(job.slot, Outcome::ok);
    } else {
      --s.loading;
      const bool exists = s.key < existing_keys_;
      if (exists || variant_ == Variant::null_cache) {
        s.cached = true;
        s.null = !exists;
        s.expires = ctx_.now() + lifetime(exists ? ttl_ : null_ttl_);
        s.delta = ctx_.now() - job.submitted;
        if (variant_ == Variant::background_refresh) schedule_refresh(job.state);
      }
      if (job.slot != kNone) {
        if (s.cached) fill_l1(job.slot, s);
        finish(job.slot, Outcome::miss);
      }
      release_waiters(s, Outcome::miss);
    }
    if (!db_queue_.empty() && db_busy_ < db_workers_) {
      const DbJob next = db_queue_.front();
      db_queue_.pop_front();
      db_start(next);
    }
  }

  void release_waiters(KeyState& s, Outcome outcome) {
    for (std::uint32_t w = s.waiters, next; w != kNone; w = next) {
      next = pending_[w].next;
      if (s.cached) fill_l1(w, s);
      finish(w, outcome);
    }
    s.waiters = kNone;
  }

  // ---- Bloom filter of the existing keys -------------------------------------------------------

  void build_bloom(double bits_per_key) {
    const double bits = std::max(64.0, bits_per_key * static_cast<double>(existing_keys_));
    bloom_.assign(static_cast<std::size_t>(std::ceil(bits / 64)), 0);
    bloom_hashes_ = std::max(1, static_cast<int>(std::lround(bits_per_key * std::log(2.0))));
    for (std::uint64_t k = 0; k < existing_keys_; ++k) {
      const std::uint64_t h = Rng::hash(k), step = (h >> 32) | 1;
      for (int i = 0; i < bloom_hashes_; ++i) {
        const std::uint64_t bit = (h + static_cast<std::uint64_t>(i) * step) % (bloom_.size() * 64);
        bloom_[bit / 64] |= std::uint64_t{1} << (bit % 64);
      }
    }
  }
  bool bloom_contains(std::uint64_t key) const {
    const std::uint64_t h = Rng::hash(key), step = (h >> 32) | 1;
    for (int i = 0; i < bloom_hashes_; ++i) {
      const std::uint64_t bit = (h + static_cast<std::uint64_t>(i) * step) % (bloom_.size() * 64);
      if (!(bloom_[bit / 64] >> (bit % 64) & 1)) return false;
    }
    return true;
  }

  Variant variant_;
  Context& ctx_;
  Time ttl_, null_ttl_, l1_ttl_;
  double jitter_, beta_, refresh_at_;
  std::uint64_t existing_keys_;
  Time node_service_, node_max_wait_;
  std::uint32_t app_servers_, l1_size_, db_workers_;
  std::size_t db_queue_limit_;
  double db_median_, db_sigma_ = 0;
  Metric &db_queries_metric_, &dup_metric_, &absent_metric_;

  std::vector<Time> node_busy_;  // each node is free again at this time
  std::vector<std::int64_t> node_ops_;
  std::vector<L1Slot> l1_;
  std::vector<std::uint64_t> bloom_;
  int bloom_hashes_ = 0;

  DenseIndex index_;
  std::vector<KeyState> states_;
  SlotPool<Pending> pending_;
  SlotPool<DbJob> jobs_;
  std::deque<DbJob> db_queue_;
  std::uint32_t db_busy_ = 0;

  double attack_share_ = 0;
  Time last_arrival_ = 0, window_ = 0;
  std::int64_t window_count_ = 0, peak_window_ = 0;
  std::int64_t db_queries_ = 0, dup_loads_ = 0, absent_queries_ = 0, bloom_rejections_ = 0;
};

class CacheProblems final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const LessonInfo info{
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
         {"bloom_filter", false,
          "penetration fix: a Bloom filter of existing keys answers 'absent'"},
         {"local_l1", false, "hotspot fix: per-app-server L1 cache, short jittered TTL"},
         {"jittered_ttl", false, "avalanche fix: ttl * uniform(1 - jitter, 1 + jitter)"}},
        {{"ttl", ParamType::duration, "10s", "lifetime of a cached value", 1e-3, 1e6},
         {"jitter", ParamType::real, 0.2, "jittered_ttl and local_l1: relative TTL spread", 0,
          0.99},
         {"null_ttl", ParamType::duration, "60s", "null_cache: lifetime of a cached 'not found'",
          1e-3, 1e6},
         {"beta", ParamType::real, 1.0, "early_expiry: eagerness (>1 recomputes earlier)", 1e-3,
          100},
         {"refresh_at", ParamType::real, 0.8,
          "background_refresh: reload at this fraction of the TTL", 0.01, 0.99},
         {"existing_keys", ParamType::integer, 100000,
          "keys [0, existing_keys) exist in the database", 1, 1e8},
         {"bloom_bits_per_key", ParamType::real, 10.0, "bloom_filter: bits per existing key", 1,
          64},
         {"cache_nodes", ParamType::integer, 8, "nodes of the shared cache (key -> hash % nodes)",
          1, 10000},
         {"node_service", ParamType::duration, "10us", "time a cache node spends per lookup", 1e-9,
          1},
         {"node_max_wait", ParamType::duration, "100ms", "queueing at a node before it refuses", 0,
          3600},
         {"app_servers", ParamType::integer, 20, "app servers (request -> client % app_servers)", 1,
          10000},
         {"l1_capacity", ParamType::integer, 1024,
          "local_l1: entries per app server (direct-mapped)", 1, 1e7},
         {"l1_ttl", ParamType::duration, "1s", "local_l1: lifetime of an L1 entry (jittered)", 1e-3,
          1e6},
         {"db_median", ParamType::duration, "20ms", "median database query time", 1e-6, 100},
         {"db_p99", ParamType::duration, "100ms", "99th percentile database query time (lognormal)",
          1e-6, 1000},
         {"db_workers", ParamType::integer, 32, "queries the database runs at once", 1, 1e6},
         {"db_queue_limit", ParamType::integer, 100000,
          "queued queries before the database refuses", 0, 1e9}},
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
          "database queries for keys that do not exist"}}};
    return info;
  }

  std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                Context& ctx) const override {
    static const std::pair<const char*, Variant> variants[] = {
        {"naive", Variant::naive},
        {"single_flight", Variant::single_flight},
        {"early_expiry", Variant::early_expiry},
        {"background_refresh", Variant::background_refresh},
        {"null_cache", Variant::null_cache},
        {"bloom_filter", Variant::bloom_filter},
        {"local_l1", Variant::local_l1},
        {"jittered_ttl", Variant::jittered_ttl}};
    for (const auto& [name, v] : variants)
      if (variant == name) return std::make_unique<CacheTier>(v, params, ctx);
    throw std::invalid_argument("unknown variant " + variant);
  }
};

}  // namespace

HLDLAB_PLUGIN(CacheProblems)
