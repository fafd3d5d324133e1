// Web crawler: fetch pages, extract their links, fetch those.
//
//   problem:  naive            -> one FIFO frontier; every link found is appended, seen or not
//             links cluster on popular hosts, so consecutive fetches hit the same host: its
//             request rate climbs past what it tolerates, it answers 429, then bans the crawler.
//             The same URLs come back again and again: duplicate fetches. robots.txt ignored.
//   fix:      polite_hashset   -> a queue per host and a politeness delay per host (the next
//             fetch takes the host whose delay ran out first); a URL enters the frontier once
//             (an exact hash set of seen URLs); robots.txt fetched once per host and obeyed.
//   fix:      polite_bloom     -> the same with a Bloom filter of seen URLs: a fixed, small
//             memory, but a false positive says "seen" for a new URL: that URL is never crawled.
//
// Model: `hosts` hosts of `pages_per_host` pages; URL = host x pages_per_host + page. A page's
// `links` links are hashed from its URL (the same web for every variant): with probability
// `internal_links` to its own host, else to a host drawn Zipf(host_skew); the page within the
// host Zipf(page_skew) (popular pages are linked often). A share `robots_disallowed` of each
// host's pages is disallowed by its robots.txt. Each request is one fetch slot of the crawler:
// it takes the next URL (none ready: it completes `miss` at once), fetches it in fetch_time and
// completes `ok` (a page), `rejected` (the host answered 429: more than host_limit requests in
// the last second) or `error` (the host has banned the crawler after ban_after 429s). The
// frontier starts with every host's home page. The workload's service time is not used.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <queue>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/fifo.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Variant { naive, polite_hashset, polite_bloom };

/// A Bloom filter of 64-bit keys: k probes by double hashing over `bits` bits.
class Bloom {
 public:
  Bloom(std::uint64_t bits, int k) : words_((bits + 63) / 64), bits_(words_.size() * 64), k_(k) {}
  /// Adds `key`; returns whether it was (maybe) there already.
  bool test_and_add(std::uint64_t key) {
    const std::uint64_t h1 = Rng::hash(key), h2 = Rng::hash(h1) | 1;
    bool present = true;
    for (int i = 0; i < k_; ++i) {
      const std::uint64_t bit = (h1 + static_cast<std::uint64_t>(i) * h2) % bits_;
      std::uint64_t& word = words_[bit / 64];
      const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
      present = present && (word & mask) != 0;
      word |= mask;
    }
    return present;
  }
  std::uint64_t bytes() const { return bits_ / 8; }

 private:
  std::vector<std::uint64_t> words_;
  std::uint64_t bits_;
  int k_;
};

struct Host {
  Fifo<std::uint64_t> queue;  // polite: this host's frontier
  Fifo<Time> recent;          // requests in the last second (the host's view)
  Time next_allowed = 0;      // polite: the politeness delay
  std::int64_t strikes = 0;   // 429s answered
  bool banned = false;
  bool robots_known = false;  // polite: robots.txt fetched
  bool scheduled = false;     // polite: in the ready queue
};

class Crawler final : public System {
 public:
  Crawler(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        pages_(p.integer<std::uint64_t>("pages_per_host")),
        links_(p.integer<int>("links")),
        internal_(p.real("internal_links")),
        disallowed_(p.real("robots_disallowed")),
        fetch_time_(p.duration("fetch_time")),
        politeness_(p.duration("politeness")),
        host_limit_(p.integer<std::size_t>("host_limit")),
        ban_after_(p.integer("ban_after")),
        host_pick_(KeyDistribution::zipf(p.integer<std::uint64_t>("hosts"), p.real("host_skew"))),
        page_pick_(KeyDistribution::zipf(pages_, p.real("page_skew"))),
        web_salt_(ctx.salt("web")),
        hosts_(p.integer<std::size_t>("hosts")),
        bloom_(p.integer<std::uint64_t>("bloom_bits"), p.integer<int>("bloom_hashes")),
        pages_metric_(ctx.metric("pages_fetched")),
        duplicates_metric_(ctx.metric("duplicate_fetches")),
        throttled_metric_(ctx.metric("throttled")),
        banned_metric_(ctx.metric("banned_hosts")) {
    for (std::uint64_t h = 0; h < hosts_.size(); ++h) discover(h * pages_);
  }

  void handle(const Request& r) override {
    std::uint64_t url = 0;
    if (!next_url(url)) return ctx_.complete(r, Outcome::miss);  // nothing ready
    if (!requested_.insert(url).second) {  // asked for before (whatever the answer was)
      ++duplicates_;
      duplicates_metric_.add(1);
    }
    const std::uint64_t h = url / pages_;
    Host& host = hosts_[h];
    if (variant_ != Variant::naive && !host.robots_known) {  // the first visit reads robots.txt
      host.robots_known = true;
      ++robots_fetches_;
    }
    // The host's side: its rate over the last second, its patience.
    const Time now = ctx_.now();
    while (!host.recent.empty() && host.recent.front() <= now - seconds(1)) host.recent.pop_front();
    host.recent.push_back(now);
    max_host_rate_ =
        std::max<std::int64_t>(max_host_rate_, static_cast<std::int64_t>(host.recent.size()));
    Outcome outcome = Outcome::ok;
    if (host.banned) {
      outcome = Outcome::error;
    } else if (host.recent.size() > host_limit_) {
      outcome = Outcome::rejected;
      throttled_metric_.add(1);
      ++throttled_;
      if (++host.strikes >= ban_after_) {
        host.banned = true;
        ++banned_;
        banned_metric_.set(static_cast<double>(banned_));
      }
    }
    if (outcome == Outcome::ok) fetched(url);
    ctx_.after(fetch_time_, [this, r, outcome] { ctx_.complete(r, outcome); });
  }

  Map figures() const override {
    const double span = to_seconds(ctx_.now() - counting_from_);
    return {{"pages", unique_},
            {"pages_per_second", span > 0 ? static_cast<double>(unique_) / span : 0.0},
            {"duplicate_fetches", duplicates_},
            {"throttled", throttled_},
            {"banned_hosts", banned_},
            {"max_host_rate", max_host_rate_},
            {"robots_violations", robots_violations_},
            {"robots_fetches", robots_fetches_},
            {"missed_urls", missed_},
            {"frontier", static_cast<std::int64_t>(frontier_size())},
            {"seen_bytes", seen_bytes()}};
  }

  /// Counts restart; the crawl (frontier, seen URLs, hosts' bans) is state and stays.
  void reset_stats() override {
    unique_ = duplicates_ = throttled_ = max_host_rate_ = robots_violations_ = robots_fetches_ =
        missed_ = 0;
    counting_from_ = ctx_.now();
  }

 private:
  bool disallowed(std::uint64_t url) const {
    return Rng::uniform_at(web_salt_, url, 1) < disallowed_;
  }

  /// A page arrived: count it, follow its links.
  void fetched(std::uint64_t url) {
    if (fetched_.insert(url).second) {
      ++unique_;
      pages_metric_.add(1);
    }
    if (disallowed(url)) ++robots_violations_;
    Rng links(Rng::hash(url ^ web_salt_));  // the page's links: the same in every variant
    const std::uint64_t own = url / pages_;
    for (int i = 0; i < links_; ++i) {
      const std::uint64_t host = links.uniform() < internal_ ? own : host_pick_.sample(links);
      discover(host * pages_ + page_pick_.sample(links));
    }
  }

  /// A link to `url` was found.
  void discover(std::uint64_t url) {
    if (variant_ == Variant::naive) return naive_frontier_.push_back(url);
    const bool truly_seen = !seen_.insert(url).second;  // exact: what the crawler should know
    const bool says_seen =
        variant_ == Variant::polite_bloom ? bloom_.test_and_add(url) : truly_seen;
    if (says_seen) {
      if (!truly_seen) ++missed_;  // a Bloom false positive: this URL is never crawled
      return;
    }
    if (disallowed(url)) return;  // robots.txt says no
    Host& host = hosts_[url / pages_];
    host.queue.push_back(url);
    if (!host.scheduled) {
      host.scheduled = true;
      ready_.push({std::max(host.next_allowed, ctx_.now()), url / pages_});
    }
  }

  bool next_url(std::uint64_t& url) {
    if (variant_ == Variant::naive) {
      if (naive_frontier_.empty()) return false;
      url = naive_frontier_.pop_front();
      return true;
    }
    if (ready_.empty() || ready_.top().first > ctx_.now()) return false;
    const std::uint64_t h = ready_.top().second;
    ready_.pop();
    Host& host = hosts_[h];
    url = host.queue.pop_front();
    host.next_allowed = ctx_.now() + politeness_;
    host.scheduled = !host.queue.empty();
    if (host.scheduled) ready_.push({host.next_allowed, h});
    return true;
  }

  std::size_t frontier_size() const {
    if (variant_ == Variant::naive) return naive_frontier_.size();
    std::size_t n = 0;
    for (const Host& h : hosts_) n += h.queue.size();
    return n;
  }

  /// Memory of the seen-URL structure: 8 bytes per URL in a hash set (plus its overhead,
  /// not counted), the Bloom filter's bits, none for naive.
  std::int64_t seen_bytes() const {
    switch (variant_) {
      case Variant::naive:
        return 0;
      case Variant::polite_hashset:
        return static_cast<std::int64_t>(seen_.size() * 8);
      case Variant::polite_bloom:
        return static_cast<std::int64_t>(bloom_.bytes());
    }
    return 0;
  }

  Variant variant_;
  Context& ctx_;
  std::uint64_t pages_;
  int links_;
  double internal_, disallowed_;
  Time fetch_time_, politeness_;
  std::size_t host_limit_;
  std::int64_t ban_after_;
  KeyDistribution host_pick_, page_pick_;
  std::uint64_t web_salt_;
  std::vector<Host> hosts_;
  Fifo<std::uint64_t> naive_frontier_;
  using Ready = std::pair<Time, std::uint64_t>;  // (when the host may be fetched, host)
  std::priority_queue<Ready, std::vector<Ready>, std::greater<>> ready_;
  std::unordered_set<std::uint64_t> seen_;       // polite: URLs that entered the frontier
  std::unordered_set<std::uint64_t> fetched_;    // every variant: pages fetched (for counting)
  std::unordered_set<std::uint64_t> requested_;  // every variant: URLs requested (for counting)
  Bloom bloom_;
  Metric& pages_metric_;
  Metric& duplicates_metric_;
  Metric& throttled_metric_;
  Metric& banned_metric_;

  Time counting_from_ = 0;
  std::int64_t unique_ = 0, duplicates_ = 0, throttled_ = 0, banned_ = 0, max_host_rate_ = 0,
               robots_violations_ = 0, robots_fetches_ = 0, missed_ = 0;
};

LessonInfo info() {
  return {
      "web_crawler",
      "Web crawler: one FIFO hammers hosts into bans and refetches duplicates; per-host "
      "politeness and a seen set do not",
      "A crawler with one FIFO frontier appends every link it finds. Links cluster on popular "
      "hosts, so consecutive fetches hit the same host: its request rate climbs past what it "
      "tolerates, it answers 429 and then bans the crawler. Without a record of seen URLs the "
      "same pages are fetched again and again, and robots.txt is ignored.",
      "A frontier with one queue per host and a politeness delay per host (the next fetch "
      "takes the host whose delay ran out first); a URL enters the frontier once, checked in a "
      "set of seen URLs (a hash set, or a Bloom filter in fixed memory whose false positives "
      "make some new URLs look seen: they are never crawled); robots.txt read once per host "
      "and obeyed.",
      {"Mercator (Heydon and Najork, 1999): per-host FIFO back queues with politeness delays, "
       "URL-seen test",
       "Googlebot, Bingbot: crawl-rate limits per host, 429/503 back-off, robots.txt (RFC 9309)",
       "Apache Nutch and StormCrawler: per-host queues with fetcher.server.delay",
       "IRLbot (Lee et al., WWW 2008): disk-based URL-seen checks at billions of URLs",
       "Scrapy: DOWNLOAD_DELAY, AutoThrottle and a request fingerprint dupefilter"},
      {{"naive", true, "one FIFO frontier, every link appended, no politeness, no robots"},
       {"polite_hashset", false, "per-host queues + politeness delay, exact seen set, robots"},
       {"polite_bloom", false, "the same with a Bloom filter of seen URLs (false positives)"}},
      {{"hosts", ParamType::integer, 200, "hosts on the web", 1, 1e6},
       {"pages_per_host", ParamType::integer, 1000, "pages per host", 1, 1e9},
       {"links", ParamType::integer, 8, "links per page", 0, 1000},
       {"internal_links", ParamType::real, 0.6, "share of links to the page's own host", 0, 1},
       {"host_skew", ParamType::real, 1.2, "Zipf exponent of an external link's host", 0, 5},
       {"page_skew", ParamType::real, 1.0, "Zipf exponent of a link's page within a host", 0, 5},
       {"robots_disallowed", ParamType::real, 0.1, "share of a host's pages robots.txt forbids", 0,
        1},
       {"fetch_time", ParamType::duration, "200ms", "time of one fetch", 0, 60},
       {"politeness", ParamType::duration, "1s", "polite: delay between two fetches of a host", 0,
        3600},
       {"host_limit", ParamType::integer, 2,
        "a host answers 429 beyond this many requests in one second", 1, 1e6},
       {"ban_after", ParamType::integer, 5, "a host bans the crawler after this many 429s", 1, 1e9},
       {"bloom_bits", ParamType::integer, 32768, "polite_bloom: bits of the filter", 64, 1e10},
       {"bloom_hashes", ParamType::integer, 4, "polite_bloom: hash functions", 1, 32}},
      {},
      {},
      {{"pages_fetched", MetricSpec::Kind::counter, "distinct pages fetched"},
       {"duplicate_fetches", MetricSpec::Kind::counter, "requests for a URL requested before"},
       {"throttled", MetricSpec::Kind::counter, "fetches answered 429"},
       {"banned_hosts", MetricSpec::Kind::gauge, "hosts that banned the crawler"}},
      {{"pages", Unit::count, "distinct pages fetched"},
       {"pages_per_second", Unit::per_second, "distinct pages fetched per second"},
       {"duplicate_fetches", Unit::count, "requests for a URL requested before"},
       {"throttled", Unit::count, "fetches answered 429 Too Many Requests"},
       {"banned_hosts", Unit::count, "hosts that banned the crawler (whole run)"},
       {"max_host_rate", Unit::count, "most requests one host received within one second"},
       {"robots_violations", Unit::count, "pages fetched that robots.txt disallows"},
       {"robots_fetches", Unit::count, "robots.txt files read"},
       {"missed_urls", Unit::count, "new URLs the Bloom filter took for seen: never crawled"},
       {"frontier", Unit::count, "URLs waiting in the frontier at the end"},
       {"seen_bytes", Unit::bytes, "memory of the seen-URL set (8 bytes per URL) or filter"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"naive", Variant::naive},
      {"polite_hashset", Variant::polite_hashset},
      {"polite_bloom", Variant::polite_bloom}};
  return std::make_unique<Crawler>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
