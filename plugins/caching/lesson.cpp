// Caching: a cache in front of a slow, finite database.
//
//   problem:  none:  read(k) -> db.get(k)                  every read queues at the database
//             fifo:  evict(oldest insertion)              hot keys are thrown out as often as
//                                                         cold ones: low hit ratio
//   fix:      lru:   on hit move k to front; evict the back
//             lfu:   evict the key with the fewest hits (ties: least recently used)
//             ttl:   lru + an entry expires `ttl` after it was loaded (bounds staleness)
//             wtinylfu: new keys enter a 1% LRU window; the window's oldest key is admitted to
//                   the segmented-LRU main area only if a count-min sketch (with doorkeeper)
//                   says it is more frequent than main's victim: one-hit wonders and scans
//                   never displace the hot set
//   strategies (parameter):
//             cache_aside:   miss -> app reads db, then cache.set(k, v); write -> db, delete k
//                            (a read that read the db before a write and sets after it leaves a
//                            stale value in the cache: counted as stale reads)
//             read_through:  the cache loads misses itself, one db query per key at a time
//             write_through: write -> db then cache, in order (versioned: no stale fill)
//             write_back:    write -> cache only, acknowledged at once; dirty keys flushed to the
//                            db every flush_interval. crash -> unflushed writes are lost (counted)
#include <string>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/lognormal_durations.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"
#include "policies.hpp"

namespace {
using namespace hldlab;
using namespace hldlab::caching;

enum class Policy { none, fifo, lru, lfu, ttl, wtinylfu };
enum class Strategy { cache_aside, read_through, write_through, write_back };

/// Keys the `scan` fault reads: far above any workload key, never repeated within a scan.
constexpr std::uint64_t kScanBase = std::uint64_t{1} << 48;
constexpr std::uint64_t kScanSalt = 0x5CA11;

/// Versions of one key: written (last write accepted), acked (last write acknowledged to a
/// client), db (last write the database committed).
struct Versions {
  std::uint32_t written = 0, acked = 0, db = 0;
};

/// A request waiting for something (the database, a shared load, the cache round trip).
struct Pending {
  Request request;
  SlotHandle next;            ///< next waiter on the same shared load
  std::uint32_t version = 0;  ///< writes: the version this write creates
};

/// A database query. A read returns the version committed when it was issued.
struct DbJob {
  enum Kind : std::uint8_t { read, load, write, flush };
  std::uint64_t key = 0;
  SlotHandle waiter;          ///< the waiting request (the first waiter of a load; none: flush)
  std::uint32_t version = 0;  ///< writes: version written; reads: version read
  std::uint32_t writes = 0;   ///< flush: acknowledged writes this flush makes durable
  Kind kind = read;
};

class CachedStore final : public System {
 public:
  CachedStore(Policy policy, const Params& p, Context& ctx)
      : policy_(policy),
        strategy_(variant_value(p.string("strategy"), kStrategies)),
        ctx_(ctx),
        ttl_(p.duration("ttl")),
        cache_latency_(p.duration("cache_latency")),
        flush_interval_(p.duration("flush_interval")),
        db_time_(lognormal_durations(p, "db")),
        db_(ctx,
            {.workers = p.integer<int>("db_workers"),
             .queue_limit = p.integer<std::size_t>("db_queue_limit")},
            [this](DbJob& job) { db_done(job); }),
        db_queries_metric_(ctx.metric("db_queries")),
        stale_metric_(ctx.metric("stale_reads")),
        lost_metric_(ctx.metric("writes_lost")),
        entries_metric_(ctx.metric("cache_entries")) {
    const auto capacity = p.integer<std::size_t>("capacity");
    switch (policy_) {
      case Policy::none:
        break;
      case Policy::fifo:
        cache_ = std::make_unique<ListCache>(capacity, false);
        break;
      case Policy::lru:
      case Policy::ttl:
        cache_ = std::make_unique<ListCache>(capacity, true);
        break;
      case Policy::lfu:
        cache_ = std::make_unique<LfuCache>(capacity);
        break;
      case Policy::wtinylfu:
        cache_ = std::make_unique<WTinyLfuCache>(capacity, p.real("window_share"));
        break;
    }
    if (cache_ && strategy_ == Strategy::write_back)
      ctx_.after(flush_interval_, [this] { flush_tick(); });
  }

  void handle(const Request& in) override {
    last_arrival_ = in.arrival;
    Request r = in;
    r.key += key_shift_;
    if (scan_share_ > 0 && Rng::uniform_at(kScanSalt, r.id, 0) < scan_share_) {
      r.key = kScanBase + scan_position_++ % scan_length_;
      r.op = Op::read;
    }
    const SlotHandle h = pending_.acquire();
    pending_[h] = {r, {}, 0};
    if (r.op == Op::write) return write(h);
    if (!cache_) return db_submit({r.key, h, 0, 0, DbJob::read});
    Entry* e = cache_->access(r.key);
    if (e != nullptr && e->expires != 0 && e->expires <= ctx_.now()) {
      drop(r.key, *e);
      e = nullptr;
    }
    if (e != nullptr) {
      if (const Versions* v = find_versions(r.key); v != nullptr && e->version < v->acked) {
        ++stale_reads_;
        stale_metric_.add(1);
        oldest_stale_hit_ = std::max(oldest_stale_hit_, ctx_.now() - e->loaded);
      }
      return finish_after(cache_latency_, h, Outcome::hit);
    }
    if (strategy_ == Strategy::cache_aside) return db_submit({r.key, h, 0, 0, DbJob::read});
    join_load(h);
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "crash") {
      if (!cache_) return;
      const std::int64_t lost = unflushed_writes();
      dirty_keys_.clear();
      cache_->clear();
      entries_metric_.set(0);
      lose(lost);
      ctx_.log("cache crashed: " + std::to_string(lost) + " unflushed writes lost");
    } else if (fault == "shift") {
      key_shift_ = static_cast<std::uint64_t>(p["offset"].as_int());
    } else if (fault == "scan") {
      scan_share_ = p["share"].as_double();
      scan_length_ = static_cast<std::uint64_t>(p["length"].as_int());
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "contains")
      return cache_ && cache_->peek(static_cast<std::uint64_t>(args["key"].as_int()));
    return Map{{"entries", static_cast<std::int64_t>(cache_ ? cache_->size() : 0)},
               {"capacity", static_cast<std::int64_t>(cache_ ? cache_->capacity() : 0)},
               {"memory_bytes", static_cast<std::int64_t>(cache_ ? cache_->memory_bytes() : 0)},
               {"unflushed_writes", unflushed_writes()},
               {"db_queue", static_cast<std::int64_t>(db_.queued())},
               {"db_reads", db_reads_},
               {"db_writes", db_writes_}};
  }

  Map figures() const override {
    const double span = to_seconds(last_arrival_ - stats_start_);
    const double queries = static_cast<double>(db_reads_ + db_writes_);
    return {{"db_qps", span > 0 ? queries / span : queries},
            {"db_reads", db_reads_},
            {"db_writes", db_writes_},
            {"stale_reads", stale_reads_},
            {"oldest_stale_hit", to_seconds(oldest_stale_hit_)},
            {"writes_lost", writes_lost_}};
  }

  void reset_stats() override {
    db_reads_ = db_writes_ = stale_reads_ = writes_lost_ = 0;
    oldest_stale_hit_ = 0;
    stats_start_ = ctx_.now();
  }

 private:
  static constexpr std::pair<const char*, Strategy> kStrategies[] = {
      {"cache_aside", Strategy::cache_aside},
      {"read_through", Strategy::read_through},
      {"write_through", Strategy::write_through},
      {"write_back", Strategy::write_back}};

  // ---- requests ----------------------------------------------------------------------------

  void finish(SlotHandle h, Outcome outcome) {
    const Pending& p = pending_[h];
    if (p.request.op == Op::write && outcome == Outcome::ok) {
      Versions& v = versions(p.request.key);
      v.acked = std::max(v.acked, p.version);
    }
    ctx_.complete(p.request, outcome);
    pending_.release(h);
  }

  void finish_after(Time delay, SlotHandle h, Outcome outcome) {
    if (delay <= 0) return finish(h, outcome);
    ctx_.after(delay, [this, h, outcome] { finish(h, outcome); });
  }

  void write(SlotHandle h) {
    const std::uint64_t key = pending_[h].request.key;
    const std::uint32_t version = pending_[h].version = ++versions(key).written;
    if (!cache_ || strategy_ != Strategy::write_back)
      return db_submit({key, h, version, 1, DbJob::write});
    // Write-back: the cache holds the only copy until the next flush.
    Entry* e = cache_->access(key);
    if (e == nullptr) e = &insert(key);
    e->version = version;
    stamp(*e);
    if (e->dirty++ == 0) dirty_keys_.push_back(key);
    finish_after(cache_latency_, h, Outcome::ok);
  }

  /// Read-through and write-through/back: one database load per key; later misses wait on it.
  void join_load(SlotHandle h) {
    const std::uint64_t key = pending_[h].request.key;
    const std::uint32_t first = loads_.find(key);
    if (first != kNone) {
      pending_[h].next = pending_[first].next;
      pending_[first].next = h;
      return;
    }
    loads_.insert(key, h.index);
    db_submit({key, h, 0, 0, DbJob::load});
  }

  /// Answer the first waiter of a load and everyone who joined it.
  template <class F>
  void for_each_waiter(SlotHandle first, F&& answer) {
    for (SlotHandle h = first, next; h; h = next) {
      next = pending_[h].next;
      answer(h);
    }
  }

  // ---- the cache ---------------------------------------------------------------------------

  Entry& insert(std::uint64_t key) {
    Evicted evicted;
    Entry& e = cache_->insert(key, evicted);
    if (evicted.any && evicted.entry.dirty > 0) flush_entry(evicted.key, evicted.entry);
    entries_metric_.set(static_cast<double>(cache_->size()));
    return e;
  }

  /// A value enters the cache now: its age starts, and under the ttl policy its lifetime.
  void stamp(Entry& e) {
    e.loaded = ctx_.now();
    if (policy_ == Policy::ttl) e.expires = e.loaded + ttl_;
  }

  /// An expired entry leaves the cache; write-back sends its unflushed writes first.
  void drop(std::uint64_t key, Entry& e) {
    if (e.dirty > 0) flush_entry(key, e);
    cache_->erase(key);
  }

  /// The value read from the database at `version` arrives in the cache.
  void fill(std::uint64_t key, std::uint32_t version) {
    Entry* e = cache_->peek(key);
    if (e == nullptr) {
      e = &insert(key);
      e->version = version;
    } else if (strategy_ == Strategy::cache_aside || strategy_ == Strategy::read_through) {
      e->version = version;  // a blind set: may overwrite a newer value (the classic race)
    } else {
      e->version = std::max(e->version, version);
    }
    if (strategy_ == Strategy::write_through) {
      // The cache applies writes and loads in commit order: a load that read the database
      // before a write committed is superseded by that write, which went through the cache.
      if (const Versions* v = find_versions(key)) e->version = std::max(e->version, v->db);
    }
    stamp(*e);
  }

  void flush_entry(std::uint64_t key, Entry& e) {
    db_submit({key, {}, e.version, e.dirty, DbJob::flush});
    e.dirty = 0;
  }

  void flush_tick() {
    for (std::uint64_t key : dirty_keys_)
      if (Entry* e = cache_->peek(key); e != nullptr && e->dirty > 0) flush_entry(key, *e);
    dirty_keys_.clear();
    ctx_.after(flush_interval_, [this] { flush_tick(); });
  }

  std::int64_t unflushed_writes() const {
    std::int64_t dirty = 0;
    for (std::uint64_t key : dirty_keys_)
      if (const Entry* e = cache_->peek(key)) dirty += e->dirty;
    return dirty;
  }

  void lose(std::int64_t writes) {
    writes_lost_ += writes;
    lost_metric_.add(static_cast<double>(writes));
  }

  // ---- the database: a queueing server with lognormal query times ---------------------------

  void db_submit(DbJob job) {
    if (job.kind == DbJob::read || job.kind == DbJob::load) {
      const Versions* v = find_versions(job.key);
      job.version = v != nullptr ? v->db : 0;
    }
    if (db_.submit(job, db_time_.sample_time(ctx_.rng())) != Admission::rejected) return;
    // Overloaded: the request (and every waiter on a shared load) is turned away; a refused
    // flush loses its writes.
    switch (job.kind) {
      case DbJob::flush:
        return lose(job.writes);
      case DbJob::load:
        loads_.erase(job.key);
        return for_each_waiter(job.waiter, [this](SlotHandle h) { finish(h, Outcome::rejected); });
      default:
        return finish(job.waiter, Outcome::rejected);
    }
  }

  void db_done(const DbJob& job) {
    db_queries_metric_.add(1);
    switch (job.kind) {
      case DbJob::read:
        ++db_reads_;
        if (!cache_) return finish(job.waiter, Outcome::miss);
        fill(job.key, job.version);
        return finish_after(cache_latency_, job.waiter, Outcome::miss);
      case DbJob::load:
        ++db_reads_;
        loads_.erase(job.key);
        fill(job.key, job.version);
        return for_each_waiter(
            job.waiter, [this](SlotHandle h) { finish_after(cache_latency_, h, Outcome::miss); });
      case DbJob::write:
        ++db_writes_;
        commit(job.key, job.version);
        if (cache_ && strategy_ == Strategy::write_through) {
          Entry* e = cache_->access(job.key);
          if (e == nullptr) e = &insert(job.key);
          // The database's latest committed version: writes can commit out of order.
          e->version = std::max(e->version, versions(job.key).db);
          stamp(*e);
        } else if (cache_) {
          cache_->erase(job.key);  // invalidate; the next read loads the new value
        }
        return finish(job.waiter, Outcome::ok);
      case DbJob::flush:
        ++db_writes_;
        return commit(job.key, job.version);
    }
  }

  void commit(std::uint64_t key, std::uint32_t version) {
    Versions& v = versions(key);
    v.db = std::max(v.db, version);
  }

  // ---- versions of every key ever written ----------------------------------------------------

  Versions& versions(std::uint64_t key) {
    std::uint32_t i = version_index_.find(key);
    if (i == kNone) {
      i = static_cast<std::uint32_t>(versions_.size());
      versions_.emplace_back();
      version_index_.insert(key, i);
    }
    return versions_[i];
  }
  const Versions* find_versions(std::uint64_t key) const {
    const std::uint32_t i = version_index_.find(key);
    return i == kNone ? nullptr : &versions_[i];
  }

  Policy policy_;
  Strategy strategy_;
  Context& ctx_;
  Time ttl_, cache_latency_, flush_interval_;
  Distribution db_time_;
  Server<DbJob> db_;
  Metric &db_queries_metric_, &stale_metric_, &lost_metric_, &entries_metric_;
  std::unique_ptr<Cache> cache_;

  SlotPool<Pending> pending_;
  KeyIndex loads_;  // key -> slot index of the first waiter of its in-flight load
  std::vector<std::uint64_t> dirty_keys_;
  KeyIndex version_index_;
  std::vector<Versions> versions_;

  double scan_share_ = 0;
  std::uint64_t scan_length_ = 1, scan_position_ = 0, key_shift_ = 0;
  Time last_arrival_ = 0, stats_start_ = 0;
  std::int64_t db_reads_ = 0, db_writes_ = 0, stale_reads_ = 0, writes_lost_ = 0;
  Time oldest_stale_hit_ = 0;  // the age of the oldest value served stale
};

LessonInfo info() {
  return {
      "caching",
      "Caching: eviction policies and read/write strategies in front of a database",
      "Without a cache every read queues at the database: its load and the P99 follow the "
      "traffic. A cache with a poor eviction policy (FIFO) throws hot keys out as often as "
      "cold ones. Cache-aside can leave a stale value behind when a read's fill lands after a "
      "write's invalidation, and a write-back cache that crashes loses every write it "
      "acknowledged but had not flushed.",
      "Keep what will be asked again: LRU (recency), LFU (frequency) or W-TinyLFU (a small LRU "
      "window plus frequency-based admission into a segmented LRU, robust to scans). Bound "
      "staleness with a TTL; write through the cache in version order; use write-back only "
      "where losing the last flush interval of writes is acceptable.",
      {"Caffeine / Ristretto (W-TinyLFU)", "Redis (allkeys-lru, allkeys-lfu, volatile-ttl)",
       "Memcached (segmented LRU)", "Facebook memcache leases (stale sets)",
       "CPU and page caches (LRU approximations)"},
      {{"none", true, "no cache: every read is a database query"},
       {"fifo", true, "evict the oldest insertion, whatever its popularity"},
       {"lru", false, "evict the least recently used key"},
       {"lfu", false, "evict the least frequently used key (ties: least recent)"},
       {"ttl", false, "LRU whose entries expire `ttl` after they were loaded"},
       {"wtinylfu", false, "W-TinyLFU: LRU window + count-min admission + segmented LRU"}},
      {{"capacity", ParamType::integer, 1000, "cache size in entries", 1, 1e8},
       {"strategy",
        ParamType::string,
        "cache_aside",
        "cache_aside | read_through | write_through | write_back",
        -1e300,
        1e300,
        {"cache_aside", "read_through", "write_through", "write_back"}},
       {"ttl", ParamType::duration, "30s", "entry lifetime (the ttl variant only)", 1e-6, 1e7},
       {"cache_latency", ParamType::duration, "200us", "round trip to the cache", 0, 10},
       {"db_median", ParamType::duration, "2ms", "median database query time", 1e-6, 100},
       {"db_p99", ParamType::duration, "20ms", "99th percentile database query time (lognormal)",
        1e-6, 1000},
       {"db_workers", ParamType::integer, 16, "queries the database runs at once", 1, 1e6},
       {"db_queue_limit", ParamType::integer, 100000, "queued queries before the database refuses",
        0, 1e9},
       {"flush_interval", ParamType::duration, "1s", "write_back: time between flushes", 1e-6,
        3600},
       {"window_share", ParamType::real, 0.01, "wtinylfu: share of the capacity for the LRU window",
        1e-4, 0.99}},
      {{"crash", "the cache process restarts: every entry and every unflushed write is lost", {}},
       {"shift",
        "popularity moves: from now on key k is read as k + offset (the hot items of the "
        "morning go cold, new ones become hot)",
        {{"offset", ParamType::integer, 1000000, "added to every key", 0, 1e12}}},
       {"scan",
        "a batch job scans cold keys: a share of the requests read the next key of a long "
        "sequential scan instead (share 0 stops it)",
        {{"share", ParamType::real, 0.3, "fraction of requests replaced by the scan", 0, 1},
         {"length", ParamType::integer, 1000000, "keys in the scan before it repeats", 1, 1e12}}}},
      {{"stats",
        "entries, capacity, memory_bytes, unflushed_writes, db_queue, db_reads, db_writes",
        {}},
       {"contains",
        "whether a key is cached",
        {{"key", ParamType::integer, Value(), "key", 0, 9.2e18}}}},
      {{"db_queries", MetricSpec::Kind::counter, "queries the database served"},
       {"stale_reads", MetricSpec::Kind::counter, "hits older than the last acknowledged write"},
       {"writes_lost", MetricSpec::Kind::counter,
        "acknowledged writes that never reached the database"},
       {"cache_entries", MetricSpec::Kind::gauge, "entries in the cache"}},
      {{"db_qps", Unit::per_second, "database queries per second of traffic"},
       {"db_reads", Unit::count, "read queries the database served"},
       {"db_writes", Unit::count, "write queries the database served (write-back: flushes)"},
       {"stale_reads", Unit::count, "hits older than the last write acknowledged for the key"},
       {"oldest_stale_hit", Unit::seconds,
        "the age (since it entered the cache) of the oldest value served stale"},
       {"writes_lost", Unit::count, "acknowledged writes that never reached the database"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Policy> policies[] = {
      {"none", Policy::none}, {"fifo", Policy::fifo}, {"lru", Policy::lru},
      {"lfu", Policy::lfu},   {"ttl", Policy::ttl},   {"wtinylfu", Policy::wtinylfu}};
  return std::make_unique<CachedStore>(variant_value(variant, policies), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
