// URL shortener: how to mint short codes, and how to serve redirects.
//
//   problem:  create(url) -> code = hash(url + attempt) mod M (a truncated hash)
//                            SELECT code; taken? attempt + 1 and again  (read before write)
//                            INSERT (code, url)
//             codes collide at the birthday bound: n URLs in a space of M give about n^2 / 2M
//             collisions, and each insert i retries i / (M - i) times on average: the retries
//             grow as the table fills, every one a database read
//             redirect(code) -> database read every time; a 301 answer is cached by the
//             browser, so later clicks never reach the server and click analytics lose them
//   fix:      create(url) -> code = base62(id), id from a counter handed out in ranges to each
//                            app server (one database write per range): unique by
//                            construction, no collision, no read before write
//             redirect(code) -> an LRU cache in front of the database absorbs Zipf traffic;
//                            answer 302 so that every click is counted
//
// Cost model: a database of db_workers workers; a read costs db_read, a write db_write, a cache
// lookup cache_time; queueing follows from the load.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

/// Base62 of a number: 0-9, a-z, A-Z, most significant digit first.
std::string base62(std::uint64_t n) {
  static constexpr char kDigits[] =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[n % 62]);
    n /= 62;
  } while (n > 0);
  return out;
}

/// FNV-1a, 64 bits, over the bytes of a string, then a splitmix64 finaliser (FNV alone mixes
/// its last bytes poorly, and the code keeps only the low digits).
std::uint64_t hash_url(const std::string& url, std::uint64_t attempt) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : url) h = (h ^ c) * 1099511628211ULL;
  return Rng::hash(h ^ attempt);
}

/// A least-recently-used set of codes with a fixed capacity, on arrays (no allocation once
/// full).
class LruCache {
 public:
  explicit LruCache(std::size_t capacity) : capacity_(capacity) { index_.reserve(capacity * 2); }
  /// True when `code` is cached (it becomes the most recent).
  bool lookup(std::uint64_t code) {
    auto it = index_.find(code);
    if (it == index_.end()) return false;
    unlink(it->second);
    push_front(it->second);
    return true;
  }
  /// Cache `code`, evicting the least recent one when full.
  void insert(std::uint64_t code) {
    if (capacity_ == 0 || index_.count(code)) return;
    std::uint32_t slot;
    if (codes_.size() < capacity_) {
      slot = static_cast<std::uint32_t>(codes_.size());
      codes_.push_back(code);
      prev_.push_back(kNone);
      next_.push_back(kNone);
    } else {
      slot = tail_;
      unlink(slot);
      index_.erase(codes_[slot]);
      codes_[slot] = code;
    }
    index_[code] = slot;
    push_front(slot);
  }

 private:
  static constexpr std::uint32_t kNone = 0xFFFFFFFF;
  void unlink(std::uint32_t s) {
    if (prev_[s] != kNone)
      next_[prev_[s]] = next_[s];
    else
      head_ = next_[s];
    if (next_[s] != kNone)
      prev_[next_[s]] = prev_[s];
    else
      tail_ = prev_[s];
  }
  void push_front(std::uint32_t s) {
    prev_[s] = kNone;
    next_[s] = head_;
    if (head_ != kNone) prev_[head_] = s;
    head_ = s;
    if (tail_ == kNone) tail_ = s;
  }
  std::size_t capacity_;
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
  std::vector<std::uint64_t> codes_;
  std::vector<std::uint32_t> prev_, next_;
  std::uint32_t head_ = kNone, tail_ = kNone;
};

enum class Minting { hash_retry, base62_counter };

/// Where a redirect is answered: by the browser or the app at once, by the cache, by the
/// database.
enum class Route { answered, cache, database };

/// A request in flight: its remaining database steps.
struct InFlight {
  Request request;
  std::int32_t reads_left = 0;  // create: lookups of candidate codes still to do
  std::int32_t writes_left = 0;
  Outcome outcome = Outcome::ok;
  bool redirect = false;
};

class Shortener final : public System {
 public:
  Shortener(Minting minting, const Params& p, Context& ctx)
      : minting_(minting),
        ctx_(ctx),
        code_space_(p.integer<std::uint64_t>("code_space")),
        range_size_(p.integer<std::uint64_t>("range_size")),
        servers_(p.integer<std::uint32_t>("app_servers")),
        db_read_(p.duration("db_read")),
        db_write_(p.duration("db_write")),
        cache_time_(p.duration("cache_time")),
        permanent_(p.string("redirect") == "301"),
        cache_(p.integer<std::size_t>("cache_entries")),
        cached_(p.integer("cache_entries") > 0),
        db_(ctx, {p.integer<int>("db_workers")}, [this](SlotHandle& h) { db_done(h); }),
        collision_metric_(ctx.metric("collisions")),
        db_read_metric_(ctx.metric("db_reads")),
        lost_metric_(ctx.metric("clicks_lost")) {
    next_id_.assign(servers_, 0);
    range_end_.assign(servers_, 0);
  }

  void handle(const Request& r) override {
    const SlotHandle h = in_flight_.acquire();
    InFlight& f = in_flight_[h];
    f = {r, 0, 0, Outcome::ok, false};
    if (r.op == Op::write) {
      create(f);
      return next_step(h);
    }
    f.redirect = true;
    switch (redirect(f)) {
      case Route::answered:
        return finish(h);
      case Route::cache:
        ctx_.after(cache_time_, [this, h] { finish(h); });
        return;
      case Route::database:
        return next_step(h);
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op != "preload") return System::call(op, args);
    const std::int64_t links = args.as_map().at("links").as_int();
    Request r;
    for (std::int64_t i = 0; i < links; ++i) {
      r.id = preloaded_++ | kPreloadedBit;  // URLs of their own, not those of the traffic
      r.client = static_cast<std::uint32_t>(i);
      InFlight f{r};
      create(f);
    }
    return static_cast<std::int64_t>(codes_.size());
  }

  Map figures() const override {
    const double created = static_cast<double>(created_);
    return {{"codes_created", created_},
            {"collisions", collisions_},
            {"retries_per_create", created_ ? static_cast<double>(collisions_) / created : 0.0},
            {"fill", static_cast<double>(codes_.size()) / static_cast<double>(code_space_)},
            {"db_reads", db_reads_},
            {"db_writes", db_writes_},
            {"duplicate_codes", duplicate_codes_},
            {"code_chars", created_ ? static_cast<double>(code_chars_) / created : 0.0},
            {"redirect_p99", to_seconds(redirect_latency_.quantile(0.99))},
            {"redirect_p50", to_seconds(redirect_latency_.quantile(0.5))},
            {"clicks", clicks_},
            {"clicks_counted", clicks_counted_},
            {"clicks_lost", clicks_lost_}};
  }

  void reset_stats() override {
    created_ = collisions_ = db_reads_ = db_writes_ = duplicate_codes_ = code_chars_ = 0;
    clicks_ = clicks_counted_ = clicks_lost_ = 0;
    redirect_latency_.reset();
  }

 private:
  /// Mint a code for a new URL and plan the database work of the create.
  void create(InFlight& f) {
    const Request& r = f.request;
    std::uint64_t code = 0;
    if (minting_ == Minting::hash_retry) {
      if (codes_.size() >= code_space_) {  // every code is taken: nothing can be minted
        f.outcome = Outcome::error;
        return;
      }
      const std::string url = "https://example.com/articles/" + std::to_string(r.id);
      // SELECT the candidate; taken: the next attempt. Every attempt is one database read.
      for (std::uint64_t attempt = 0;; ++attempt) {
        code = hash_url(url, attempt) % code_space_;
        ++f.reads_left;
        if (!codes_.count(code)) break;
        ++collisions_;
        collision_metric_.add(1);
      }
    } else {
      // Each app server takes ids from its own range; a new range is one database write.
      const std::uint32_t server = r.client % servers_;
      if (next_id_[server] == range_end_[server]) {
        next_id_[server] = next_range_;
        range_end_[server] = next_range_ + range_size_;
        next_range_ += range_size_;
        ++f.writes_left;
      }
      code = next_id_[server]++;
      if (codes_.count(code)) ++duplicate_codes_;  // never: the ranges do not overlap
    }
    codes_.insert(code);
    created_codes_.push_back(code);
    code_chars_ += static_cast<std::int64_t>(base62(code).size());
    ++created_;
    ++f.writes_left;  // INSERT (code, url)
  }

  /// A click on a short link: where it is answered.
  Route redirect(InFlight& f) {
    const Request& r = f.request;
    ++clicks_;
    if (created_codes_.empty()) {  // nothing to redirect to yet: 404 from the app
      f.outcome = Outcome::error;
      return Route::answered;
    }
    // Zipf rank k is the k-th code created: old links are the popular ones.
    const std::uint64_t code =
        created_codes_[r.key < created_codes_.size() ? r.key : r.key % created_codes_.size()];
    if (permanent_ && !browser_cache_.insert(Rng::hash(code) ^ r.client).second) {
      // The browser cached this 301: it goes straight to the long URL, the server never hears.
      ++clicks_lost_;
      lost_metric_.add(1);
      f.outcome = Outcome::hit;
      return Route::answered;
    }
    ++clicks_counted_;
    if (cached_ && cache_.lookup(code)) {
      f.outcome = Outcome::hit;
      return Route::cache;
    }
    if (cached_) {
      cache_.insert(code);
      f.outcome = Outcome::miss;
    }
    ++f.reads_left;
    return Route::database;
  }

  /// Submit the next database step of `h`, or answer it.
  void next_step(SlotHandle h) {
    InFlight& f = in_flight_[h];
    Time work;
    if (f.reads_left > 0) {
      --f.reads_left;
      ++db_reads_;
      db_read_metric_.add(1);
      work = db_read_;
    } else if (f.writes_left > 0) {
      --f.writes_left;
      ++db_writes_;
      work = db_write_;
    } else {
      return finish(h);
    }
    db_.submit(h, work);
  }

  void db_done(SlotHandle h) { next_step(h); }

  void finish(SlotHandle h) {
    const InFlight& f = in_flight_[h];
    if (f.redirect) redirect_latency_.record(ctx_.now() - f.request.arrival);
    ctx_.complete(f.request, f.outcome);
    in_flight_.release(h);
  }

  static constexpr std::uint64_t kPreloadedBit = std::uint64_t{1} << 63;

  Minting minting_;
  Context& ctx_;
  std::uint64_t code_space_, range_size_;
  std::uint32_t servers_;
  Time db_read_, db_write_, cache_time_;
  bool permanent_;
  LruCache cache_;
  bool cached_;
  SlotPool<InFlight> in_flight_;
  Server<SlotHandle> db_;
  Metric& collision_metric_;
  Metric& db_read_metric_;
  Metric& lost_metric_;
  std::unordered_set<std::uint64_t> codes_;          // the table's primary key
  std::vector<std::uint64_t> created_codes_;         // in creation order
  std::unordered_set<std::uint64_t> browser_cache_;  // (client, code) pairs holding a 301
  std::vector<std::uint64_t> next_id_, range_end_;
  std::uint64_t next_range_ = 0;
  std::uint64_t preloaded_ = 0;
  Histogram redirect_latency_;
  std::int64_t created_ = 0, collisions_ = 0, db_reads_ = 0, db_writes_ = 0;
  std::int64_t duplicate_codes_ = 0, code_chars_ = 0;
  std::int64_t clicks_ = 0, clicks_counted_ = 0, clicks_lost_ = 0;
};

LessonInfo info() {
  return {
      "url_shortener",
      "URL shortener: truncated hashes collide, unique ids do not; cached redirects, 301 vs 302",
      "Minting a code as a truncated hash of the URL collides at the birthday bound (about "
      "n^2 / 2M collisions for n URLs in M codes), so every create reads the database first and "
      "retries on a collision; the retries grow as the table fills. Every redirect reads the "
      "database. A 301 is cached by the browser: later clicks never reach the server, and click "
      "analytics lose them.",
      "Mint base62(id) from a counter handed out in ranges per app server: unique by "
      "construction, no collision and no read before write, one write per range. Put an LRU "
      "cache in front of the redirects (Zipf traffic: a small cache absorbs most of it) and "
      "answer 302 to count every click.",
      {"bit.ly, TinyURL: base62 codes; Twitter t.co (301 with analytics on its own side)",
       "Flickr ticket servers and MySQL auto-increment ranges (hi/lo), Twitter Snowflake ids",
       "Redis / Memcached in front of the redirect table",
       "RFC 9110 §15.4: 301 responses are cacheable by default, 302 only when told"},
      {{"hash_retry", true, "truncated hash of the URL; read before write, retry on collision"},
       {"base62_counter", false, "base62 of an id from per-server ranges; no read, no collision"}},
      {{"code_space", ParamType::integer, 14776336,
        "number of possible codes M (62^4 = 14 776 336 by default)", 1, 1e15},
       {"range_size", ParamType::integer, 1000, "ids per range handed to an app server", 1, 1e12},
       {"app_servers", ParamType::integer, 4, "app servers minting ids (client mod servers)", 1,
        10000},
       {"db_workers", ParamType::integer, 8, "queries the database runs at once", 1, 100000},
       {"db_read", ParamType::duration, "1ms", "database time of a read", 0, 3600},
       {"db_write", ParamType::duration, "2ms", "database time of a write", 0, 3600},
       {"cache_entries", ParamType::integer, 0, "redirect cache capacity in codes (0: no cache)", 0,
        1e9},
       {"cache_time", ParamType::duration, "0.2ms", "time of a redirect cache hit", 0, 3600},
       {"redirect",
        ParamType::string,
        "302",
        "status of redirects: 301 (cached by browsers) or 302",
        -1e300,
        1e300,
        {"302", "301"}}},
      {},
      {{"preload",
        "mint `links` codes at once, as creates without database time (links to redirect to); "
        "returns the codes taken",
        {{"links", ParamType::integer, 1000, "codes to mint", 0, 1e8}}}},
      {{"collisions", MetricSpec::Kind::counter, "candidate codes found taken (retries)"},
       {"db_reads", MetricSpec::Kind::counter, "database reads (create lookups and redirects)"},
       {"clicks_lost", MetricSpec::Kind::counter, "clicks answered by a browser's cached 301"}},
      {{"codes_created", Unit::count, "short codes minted"},
       {"collisions", Unit::count, "candidate codes found taken: each one a retry"},
       {"retries_per_create", Unit::number, "collisions / codes_created"},
       {"fill", Unit::fraction, "codes taken / code_space"},
       {"db_reads", Unit::count, "database reads (create lookups and redirects)"},
       {"db_writes", Unit::count, "database writes (inserts and id ranges)"},
       {"duplicate_codes", Unit::count, "codes minted twice (must be 0)"},
       {"code_chars", Unit::number, "mean length of a minted code in base62 characters"},
       {"redirect_p99", Unit::seconds, "99th percentile of redirect latency"},
       {"redirect_p50", Unit::seconds, "median redirect latency"},
       {"clicks", Unit::count, "redirect requests (clicks)"},
       {"clicks_counted", Unit::count, "clicks that reached the server (analytics sees them)"},
       {"clicks_lost", Unit::count, "clicks answered by a browser's cached 301"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Minting> kinds[] = {
      {"hash_retry", Minting::hash_retry}, {"base62_counter", Minting::base62_counter}};
  return std::make_unique<Shortener>(variant_value(variant, kinds), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
