// CDN: users far from the origin, edge caches near them.
//
//   problem:  get(object) from region g -> the origin, origin_rtt[g] away (20 / 150 / 250 ms):
//             every user pays the distance, the origin serves every request
//   fix:      get(object) -> the edge of region g, edge_rtt[g] away (5 / 10 / 20 ms)
//               fresh copy (age < max-age)       -> answer from the edge
//               miss or expired                   -> fetch from the origin (or from a shield, a
//                                                    mid-tier cache in front of the origin, so
//                                                    one fetch serves every edge), keep it
//               expired < stale-while-revalidate  -> answer the old copy, refresh behind
//               origin down, expired < stale-if-error -> answer the old copy instead of an error
//             update(object) -> version + 1 at the origin; the edges keep serving the old
//               version (stale) until it expires (ttl), until a purge reaches them after
//               purge_delay (purge), or never (versioned URLs: the new version is a new URL)
//
// Model: a cached entry is kept until it expires (no capacity limit); requests that arrive
// while the edge is fetching an object wait for that fetch (request collapsing). Times are
// computed when a request arrives; one event completes it.
#include <algorithm>
#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Tier { origin_only, edge, edge_shield };
enum class Invalidation { ttl, purge, versioned };

constexpr int kMaxRegions = 4;

/// A cached copy of an object.
struct Entry {
  std::uint32_t version = 0;
  Time ready = 0;    // the copy is at the cache from then on (earlier: the fetch is on its way)
  Time expires = 0;  // fresh until then
  // A refresh in flight (stale-while-revalidate): the copy it brings, and when.
  bool refreshing = false;
  std::uint32_t next_version = 0;
  Time next_ready = 0, next_expires = 0;
};

struct InFlight {
  Request request;
  Outcome outcome = Outcome::ok;
};

class Cdn final : public System {
 public:
  Cdn(Tier tier, const Params& p, Context& ctx)
      : tier_(tier),
        ctx_(ctx),
        origin_time_(p.duration("origin_time")),
        shield_origin_rtt_(p.duration("shield_origin_rtt")),
        max_age_(p.duration("max_age")),
        swr_(p.duration("stale_while_revalidate")),
        sie_(p.duration("stale_if_error")),
        purge_delay_(p.duration("purge_delay")),
        invalidation_(invalidation_of(p.string("invalidation"))),
        origin_metric_(ctx.metric("origin_requests")),
        stale_metric_(ctx.metric("stale_responses")) {
    for (double ms : p.numbers("origin_rtts")) origin_rtt_.push_back(milliseconds(ms));
    for (double ms : p.numbers("edge_rtts")) edge_rtt_.push_back(milliseconds(ms));
    if (origin_rtt_.empty() || origin_rtt_.size() > kMaxRegions)
      throw std::invalid_argument("origin_rtts needs 1 to 4 regions");
    if (edge_rtt_.size() != origin_rtt_.size())
      throw std::invalid_argument("edge_rtts needs one round trip per region of origin_rtts");
    edges_.resize(origin_rtt_.size());
  }

  void handle(const Request& r) override {
    const SlotHandle h = in_flight_.acquire();
    in_flight_[h] = {r, Outcome::ok};
    const Time latency = r.op == Op::write ? update(r) : get(r, in_flight_[h].outcome);
    if (r.op == Op::read) region_latency_[region_of(r)].record(latency);
    ctx_.after(latency, [this, h] {
      ctx_.complete(in_flight_[h].request, in_flight_[h].outcome);
      in_flight_.release(h);
    });
  }

  Value call(const std::string& op, const Value& args) override {
    if (op != "update") return System::call(op, args);
    Request r;
    r.key = static_cast<std::uint64_t>(args.as_map().at("key").as_int());
    update(r);
    return static_cast<std::int64_t>(version(r.key));
  }

  void inject(const std::string& fault, const Value& params) override {
    if (fault != "origin_outage") return;
    origin_down_until_ = ctx_.now() + params.as_map().at("duration").as_int();
    ctx_.log("origin down until " + std::to_string(to_seconds(origin_down_until_)) + " s");
  }

  Map figures() const override {
    Map f{{"origin_requests", origin_requests_},
          {"origin_share",
           reads_ ? static_cast<double>(origin_requests_) / static_cast<double>(reads_) : 0.0},
          {"stale_responses", stale_responses_},
          {"stale_if_error_served", stale_if_error_served_},
          {"origin_errors", origin_errors_},
          {"purges", purges_}};
    for (std::size_t g = 0; g < origin_rtt_.size(); ++g) {
      f["p50_region" + std::to_string(g)] = to_seconds(region_latency_[g].quantile(0.5));
      f["p99_region" + std::to_string(g)] = to_seconds(region_latency_[g].quantile(0.99));
    }
    return f;
  }

  void reset_stats() override {
    reads_ = origin_requests_ = stale_responses_ = stale_if_error_served_ = origin_errors_ = 0;
    purges_ = 0;
    for (Histogram& h : region_latency_) h.reset();
  }

 private:
  static Invalidation invalidation_of(const std::string& name) {
    if (name == "purge") return Invalidation::purge;
    if (name == "versioned") return Invalidation::versioned;
    return Invalidation::ttl;
  }
  std::size_t region_of(const Request& r) const { return r.client % origin_rtt_.size(); }
  bool origin_up() const { return ctx_.now() >= origin_down_until_; }
  std::uint32_t version(std::uint64_t key) const {
    auto it = versions_.find(key);
    return it == versions_.end() ? 0 : it->second;
  }

  /// A new version of the object at the origin; a purge leaves for every cache.
  Time update(const Request& r) {
    ++versions_[r.key];
    if (invalidation_ == Invalidation::purge && tier_ != Tier::origin_only) {
      ++purges_;
      const std::uint64_t key = r.key;
      ctx_.after(purge_delay_, [this, key] {
        for (auto& edge : edges_) edge.erase(key);
        shield_.erase(key);
      });
    }
    return origin_time_;
  }

  /// Result of asking the tier behind an edge for an object.
  struct Fetch {
    bool ok = false;
    Time time = 0;  // until the answer is back at the edge
    std::uint32_t version = 0;
    Time expires = 0;  // when the copy expires (a shield's copy carries its age)
    bool hit = false;  // answered from the cache's copy
  };

  /// One request to the origin from `rtt` away.
  Fetch from_origin(std::uint64_t key, Time rtt) {
    ++origin_requests_;
    origin_metric_.add(1);
    if (!origin_up()) {
      ++origin_errors_;
      return {false, rtt, 0, 0};  // connection refused
    }
    const Time time = rtt + origin_time_;
    return {true, time, version(key), ctx_.now() + time + max_age_};
  }

  /// What an edge of region g gets when it asks upstream: the origin, or the shield first.
  Fetch upstream(std::uint64_t key, std::size_t g) {
    if (tier_ != Tier::edge_shield) return from_origin(key, origin_rtt_[g]);
    const Time to_shield = origin_rtt_[g];  // the shield sits next to the origin
    const std::uint32_t wanted = version(key);
    Fetch f =
        serve_from(shield_, key, wanted, [&] { return from_origin(key, shield_origin_rtt_); });
    f.time += to_shield;
    return f;
  }

  /// Serve `key` from `cache` (an edge or the shield): fresh, collapsed onto a fetch in flight,
  /// stale while revalidating, stale on error, or fetched through `fetch`. The returned time is
  /// what the cache adds after the request reached it.
  template <class FetchFn>
  Fetch serve_from(std::unordered_map<std::uint64_t, Entry>& cache, std::uint64_t key,
                   std::uint32_t wanted, FetchFn&& fetch) {
    const Time now = ctx_.now();
    auto it = cache.find(key);
    if (it != cache.end()) {
      Entry& e = it->second;
      if (e.refreshing && now >= e.next_ready) {  // the refresh has landed
        e.version = e.next_version;
        e.ready = e.next_ready;
        e.expires = e.next_expires;
        e.refreshing = false;
      }
      // Versioned URLs: another version is another object.
      const bool same_url = invalidation_ != Invalidation::versioned || e.version == wanted;
      if (same_url && now < e.expires) {
        return {true, std::max<Time>(0, e.ready - now), e.version, e.expires, true};
      }
      if (same_url && now < e.expires + swr_) {
        if (!e.refreshing) {
          const Fetch f = fetch();
          if (f.ok) {
            e.refreshing = true;
            e.next_version = f.version;
            e.next_ready = now + f.time;
            e.next_expires = f.expires;
          }
        }
        return {true, 0, e.version, e.expires, true};
      }
      Fetch f = fetch();
      if (!f.ok && same_url && now < e.expires + sie_) {
        ++stale_if_error_served_;
        return {true, f.time, e.version, e.expires, true};
      }
      if (f.ok) e = {f.version, now + f.time, f.expires};
      f.hit = false;
      return f;
    }
    Fetch f = fetch();
    f.hit = false;
    if (f.ok) cache[key] = {f.version, now + f.time, f.expires};
    return f;
  }

  Time get(const Request& r, Outcome& outcome) {
    ++reads_;
    const std::size_t g = region_of(r);
    const std::uint32_t current = version(r.key);
    if (tier_ == Tier::origin_only) {
      const Fetch f = from_origin(r.key, origin_rtt_[g]);
      if (!f.ok) outcome = Outcome::error;
      return f.time;
    }
    const Fetch f = serve_from(edges_[g], r.key, current, [&] { return upstream(r.key, g); });
    if (!f.ok) {
      outcome = Outcome::error;
    } else {
      outcome = f.hit ? Outcome::hit : Outcome::miss;
      if (f.version < current) {
        ++stale_responses_;
        stale_metric_.add(1);
      }
    }
    return edge_rtt_[g] + f.time;
  }

  Tier tier_;
  Context& ctx_;
  std::vector<Time> origin_rtt_, edge_rtt_;
  Time origin_time_, shield_origin_rtt_, max_age_, swr_, sie_, purge_delay_;
  Invalidation invalidation_;
  Metric& origin_metric_;
  Metric& stale_metric_;
  std::vector<std::unordered_map<std::uint64_t, Entry>> edges_;
  std::unordered_map<std::uint64_t, Entry> shield_;
  std::unordered_map<std::uint64_t, std::uint32_t> versions_;
  Time origin_down_until_ = 0;
  std::array<Histogram, kMaxRegions> region_latency_;  // reads, by region
  SlotPool<InFlight> in_flight_;
  std::int64_t reads_ = 0, origin_requests_ = 0, stale_responses_ = 0, stale_if_error_served_ = 0;
  std::int64_t origin_errors_ = 0, purges_ = 0;
};

LessonInfo info() {
  LessonInfo i{
      "cdn",
      "CDN: edge caches near the users, TTLs, shields, invalidation and stale serving",
      "Every request travels to one origin: a user 250 ms away pays 250 ms on every object, and "
      "the origin serves every request. Cached copies then go stale when the object changes, "
      "and an origin outage turns every miss into an error.",
      "Cache at edges near the users (Cache-Control max-age): a hit costs the edge round trip. "
      "An origin shield (a mid-tier cache) lets one fetch serve every edge. Purges remove stale "
      "copies after their propagation delay; versioned URLs never serve stale content. "
      "stale-while-revalidate answers an expired copy and refreshes behind; stale-if-error "
      "answers it when the origin is down.",
      {"Akamai, Cloudflare, Fastly, Amazon CloudFront edge caches (Cache-Control max-age, "
       "s-maxage)",
       "Fastly / CloudFront Origin Shield, Cloudflare Tiered Cache",
       "RFC 5861: stale-while-revalidate and stale-if-error; Fastly instant purge, CloudFront "
       "invalidations",
       "Content-hashed asset URLs (webpack [contenthash], Rails asset pipeline)"},
      {{"origin_only", true, "every request goes to the origin"},
       {"edge", false, "a cache at the edge of each region, misses go to the origin"},
       {"edge_shield", false, "edge caches in front of a shield cache next to the origin"}},
      {{"origin_rtts", ParamType::number_list, List{20.0, 150.0, 250.0},
        "round trip from each region's users (and edge) to the origin, in ms (1 to 4 regions)"},
       {"edge_rtts", ParamType::number_list, List{5.0, 10.0, 20.0},
        "round trip from each region's users to their edge, in ms"},
       {"origin_time", ParamType::duration, "20ms", "origin time to produce an object", 0, 3600},
       {"shield_origin_rtt", ParamType::duration, "2ms", "round trip shield - origin", 0, 3600},
       {"max_age", ParamType::duration, "60s", "Cache-Control max-age: how long a copy is fresh", 0,
        86400 * 365},
       {"stale_while_revalidate", ParamType::duration, 0,
        "answer an expired copy this long after max-age while it is refreshed (0: off)", 0,
        86400 * 365},
       {"stale_if_error", ParamType::duration, 0,
        "answer an expired copy this long after max-age when the origin fails (0: off)", 0,
        86400 * 365},
       {"invalidation",
        ParamType::string,
        "ttl",
        "what an update does to cached copies: ttl (nothing: they expire), purge (removed after "
        "purge_delay), versioned (the new version has a new URL)",
        -1e300,
        1e300,
        {"ttl", "purge", "versioned"}},
       {"purge_delay", ParamType::duration, "2s", "time for a purge to reach every cache", 0,
        86400}},
      {{"origin_outage",
        "the origin refuses every request for `duration`",
        {{"duration", ParamType::duration, "10s", "how long the origin is down", 0, 86400}}}},
      {{"update",
        "publish a new version of object `key` at the origin (as a write does)",
        {{"key", ParamType::integer, 0, "the object", 0, 9e15}}}},
      {{"origin_requests", MetricSpec::Kind::counter, "requests that reached the origin"},
       {"stale_responses", MetricSpec::Kind::counter, "answers older than the origin's version"}},
      {{"origin_requests", Unit::count, "requests that reached the origin (its load)"},
       {"origin_share", Unit::fraction, "origin requests / reads"},
       {"stale_responses", Unit::count, "reads answered with a version older than the origin's"},
       {"stale_if_error_served", Unit::count, "reads answered stale because the origin failed"},
       {"origin_errors", Unit::count, "origin requests refused during an outage"},
       {"purges", Unit::count, "purges sent (one per update under invalidation = purge)"}},
      /*uses_service_time=*/false};
  for (int g = 0; g < kMaxRegions; ++g) {
    const std::string n = std::to_string(g);
    i.figures.push_back({"p50_region" + n, Unit::seconds, "median read latency of region " + n});
    i.figures.push_back(
        {"p99_region" + n, Unit::seconds, "99th percentile read latency of region " + n});
  }
  return i;
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Tier> tiers[] = {
      {"origin_only", Tier::origin_only}, {"edge", Tier::edge}, {"edge_shield", Tier::edge_shield}};
  return std::make_unique<Cdn>(variant_value(variant, tiers), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
