// Rate limiting: protect an API of fixed capacity from more traffic than it can serve.
//
//   problem:  none(request)         -> backend.enqueue(request)
//             at 10x its capacity the backend queue grows without bound: every request waits
//             longer than the client's timeout, the API serves nobody in time.
//             fixed_window(request) -> count[client][now / window]++ <= limit
//             cheap, but a client can send `limit` at the end of one window and `limit` at the
//             start of the next: 2x the limit inside one window-length interval.
//   fix:      sliding_log     -> keep accepted timestamps; accept if fewer than `limit` in
//                                (now - window, now]  (exact, memory O(limit) per client)
//             sliding_window  -> prev * (1 - elapsed / window) + current < limit (two counters)
//             token_bucket    -> tokens refill at `rate` up to `burst`; a request takes one
//             leaky_bucket    -> requests wait in a queue of `burst`, leaving at `rate` (shaping)
//             gcra            -> theoretical arrival time: accept if tat - now <= (burst-1)/rate,
//                                then tat = max(tat, now) + 1/rate (token bucket, one timestamp)
//   every rejected request is a 429 (Outcome::rejected) that carries limit, remaining, reset and
//   retry-after; accepted requests go to a backend of `capacity` workers and a FIFO queue.
#include <algorithm>
#include <string>
#include <unordered_map>

#include "hldlab/fifo.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

__extension__ using Wide = __int128;  // products of counts and nanoseconds

enum class Algorithm {
  none,
  fixed_window,
  sliding_log,
  sliding_window,
  token_bucket,
  leaky_bucket,
  gcra
};

/// What the limiter remembers about one client (or about everyone, with scope = global).
struct ClientState {
  // fixed_window and sliding_window: index of the current window and its counts
  std::int64_t window_index = -1;
  std::int64_t count = 0, previous = 0;
  // sliding_log: accepted timestamps in the last window
  Fifo<Time> log;
  // token_bucket: level in nanoseconds of refill (one token = `interval` ns), as of `last`
  Time level = 0, last = 0;
  // gcra: theoretical arrival time; leaky_bucket: time the queue releases its next request
  Time tat = 0;
};

/// The rate-limit "headers" of a response: X-RateLimit-Limit/Remaining/Reset and Retry-After.
struct Headers {
  std::int64_t limit = 0;
  std::int64_t remaining = 0;
  Time reset = 0;        // until the limit is fully available again
  Time retry_after = 0;  // until the next request would be accepted (0: now)
};

/// A request accepted by the limiter, until the backend has finished with it.
struct Pending {
  Request request;
  EventId timeout;        // the client gives up
  bool answered = false;  // completed (ok, or timeout when the client gave up)
};

class Limited final : public System {
 public:
  Limited(Algorithm algorithm, const Params& p, Context& ctx)
      : algorithm_(algorithm),
        ctx_(ctx),
        limit_(p.integer("limit")),
        window_(p.duration("window")),
        burst_(p.integer("burst") > 0 ? p.integer("burst") : limit_),
        global_(p.string("scope") == "global"),
        capacity_(p.integer<int>("capacity")),
        timeout_(p.duration("timeout")),
        backend_(ctx, {.workers = capacity_, .queue_limit = p.integer<std::size_t>("queue_limit")},
                 [this](SlotHandle& h) { finish(h); }),
        accepted_metric_(ctx.metric("accepted")),
        limited_metric_(ctx.metric("limited")),
        queue_metric_(ctx.metric("backend_queue")) {
    const double rate =
        p.real("rate") > 0 ? p.real("rate") : static_cast<double>(limit_) / to_seconds(window_);
    interval_ = std::max<Time>(1, round_time(1e9 / rate));
    if (static_cast<double>(burst_) * static_cast<double>(interval_) > 1e18)
      throw std::invalid_argument("burst / rate is too long (" + std::to_string(burst_) +
                                  " requests at one per " + std::to_string(to_seconds(interval_)) +
                                  " s): keep it under 30 years");
    clients_.reserve(1024);
  }

  void handle(const Request& r) override {
    const Time now = ctx_.now();
    ClientState& c = state(r.client);
    Time release = now;  // leaky bucket: when the request leaves the limiter's queue
    if (!admit(c, now, release)) {
      ++limited_;
      limited_metric_.add(1);
      retry_after_total_ += headers(c, now).retry_after;
      return ctx_.complete(r, Outcome::rejected);
    }
    ++accepted_;
    accepted_metric_.add(1);
    track_peak(r.client, now);
    const SlotHandle h = pending_.acquire();
    pending_[h] = {r,
                   ctx_.after(std::max<Time>(0, r.arrival + timeout_ - now),
                              [this, h] { answer(h, Outcome::timeout); }),
                   false};
    if (release > now)
      ctx_.after(release - now, [this, h] { enqueue(h); });
    else
      enqueue(h);
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "headers") {
      const auto client = static_cast<std::uint32_t>(args["client"].as_int());
      const Time now = ctx_.now();
      ClientState fresh = new_state(now);
      auto it = clients_.find(global_ ? 0 : client);
      const Headers h = headers(it == clients_.end() ? fresh : it->second, now);
      if (algorithm_ == Algorithm::none) return Map{{"limited", false}};
      return Map{{"limited", true},
                 {"limit", h.limit},
                 {"remaining", h.remaining},
                 {"reset", to_seconds(h.reset)},
                 {"retry_after", to_seconds(h.retry_after)}};
    }
    if (op == "counts") return Map{{"accepted", accepted_}, {"limited", limited_}};
    if (op == "backend")
      return Map{{"workers", backend_.workers()},
                 {"busy", backend_.busy()},
                 {"queued", static_cast<std::int64_t>(backend_.queued())},
                 {"queue_max", static_cast<std::int64_t>(queue_max_)}};
    throw std::invalid_argument("unknown operation '" + op + "'");
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "kill_workers") {
      backend_.set_workers(std::max(0, backend_.workers() - static_cast<int>(p["count"].as_int())));
    } else if (fault == "restore_workers") {
      backend_.set_workers(capacity_);
    } else if (fault == "limiter_state_lost") {
      clients_.clear();  // every client starts again with a full quota
    }
  }

  Map figures() const override {
    return {{"accepted", accepted_},
            {"limited", limited_},
            {"peak_per_window", peak_},
            {"ok_p99", to_seconds(ok_latency_.quantile(0.99))},
            {"queue_max", static_cast<std::int64_t>(queue_max_)},
            {"retry_after_mean",
             limited_ > 0 ? to_seconds(retry_after_total_) / static_cast<double>(limited_) : 0.0}};
  }

  void reset_stats() override {
    accepted_ = limited_ = peak_ = 0;
    queue_max_ = 0;
    retry_after_total_ = 0;
    ok_latency_.reset();
    recent_.clear();
  }

 private:
  ClientState new_state(Time now) const {
    ClientState s;
    s.level = burst_ * interval_;  // a new client starts with a full bucket
    s.last = now;
    s.tat = now;
    return s;
  }

  ClientState& state(std::uint32_t client) {
    const std::uint32_t key = global_ ? 0 : client;
    auto it = clients_.find(key);
    if (it == clients_.end()) it = clients_.emplace(key, new_state(ctx_.now())).first;
    return it->second;
  }

  /// Roll the window counters forward to the window holding `now`.
  void roll(ClientState& c, Time now) const {
    const std::int64_t index = now / window_;
    if (index == c.window_index) return;
    c.previous = index == c.window_index + 1 ? c.count : 0;
    c.count = 0;
    c.window_index = index;
  }

  void expire(Fifo<Time>& log, Time now) const {
    while (!log.empty() && log.front() <= now - window_) log.pop_front();
  }

  /// Sliding window counter estimate of the requests in (now - window, now], times `window`
  /// (exact integers: prev * (window - elapsed) + count * window).
  Wide weighted(const ClientState& c, Time now) const {
    const Time elapsed = now - c.window_index * window_;
    return Wide{c.previous} * (window_ - elapsed) + Wide{c.count} * window_;
  }

  Time bucket_level(const ClientState& c, Time now) const {
    return std::min(burst_ * interval_, c.level + (now - c.last));
  }

  /// The limiter's decision; takes the request's share of the quota when it accepts.
  bool admit(ClientState& c, Time now, Time& release) {
    switch (algorithm_) {
      case Algorithm::none:
        return true;
      case Algorithm::fixed_window:
        roll(c, now);
        if (c.count >= limit_) return false;
        ++c.count;
        return true;
      case Algorithm::sliding_log:
        expire(c.log, now);
        if (static_cast<std::int64_t>(c.log.size()) >= limit_) return false;
        c.log.push_back(now);
        return true;
      case Algorithm::sliding_window:
        roll(c, now);
        if (weighted(c, now) + window_ > Wide{limit_} * window_) return false;
        ++c.count;
        return true;
      case Algorithm::token_bucket:
        c.level = bucket_level(c, now);
        c.last = now;
        if (c.level < interval_) return false;
        c.level -= interval_;
        return true;
      case Algorithm::gcra: {
        const Time tat = std::max(c.tat, now);
        if (tat - now > (burst_ - 1) * interval_) return false;
        c.tat = tat + interval_;
        return true;
      }
      case Algorithm::leaky_bucket: {
        release = std::max(c.tat, now);
        if (release - now > burst_ * interval_) return false;
        c.tat = release + interval_;
        return true;
      }
    }
    return true;
  }

  Headers headers(ClientState& c, Time now) const {
    Headers h;
    switch (algorithm_) {
      case Algorithm::none:
        break;
      case Algorithm::fixed_window: {
        roll(c, now);
        h.limit = limit_;
        h.remaining = std::max<std::int64_t>(0, limit_ - c.count);
        h.reset = (c.window_index + 1) * window_ - now;
        h.retry_after = h.remaining > 0 ? 0 : h.reset;
        break;
      }
      case Algorithm::sliding_log: {
        expire(c.log, now);
        h.limit = limit_;
        h.remaining = std::max<std::int64_t>(0, limit_ - static_cast<std::int64_t>(c.log.size()));
        h.reset = c.log.empty() ? 0 : c.log[c.log.size() - 1] + window_ - now;
        if (h.remaining == 0) {  // the entry that must expire to let one more in
          const std::size_t k = c.log.size() - static_cast<std::size_t>(limit_);
          h.retry_after = c.log[k] + window_ - now;
        }
        break;
      }
      case Algorithm::sliding_window: {
        roll(c, now);
        h.limit = limit_;
        const Wide room = Wide{limit_} * window_ - weighted(c, now);
        h.remaining = room <= 0 ? 0 : static_cast<std::int64_t>(room / window_);
        const Time window_end = (c.window_index + 1) * window_;
        h.reset = (c.count > 0 ? window_end + window_ : c.previous > 0 ? window_end : now) - now;
        h.retry_after = h.remaining > 0 ? 0 : sliding_retry(c, now);
        break;
      }
      case Algorithm::token_bucket: {
        const Time level = bucket_level(c, now);
        h.limit = burst_;
        h.remaining = level / interval_;
        h.reset = burst_ * interval_ - level;
        h.retry_after = level >= interval_ ? 0 : interval_ - level;
        break;
      }
      case Algorithm::gcra: {
        const Time tat = std::max(c.tat, now);
        const Time tolerance = (burst_ - 1) * interval_;
        h.limit = burst_;
        h.remaining = tat - now > tolerance ? 0 : (now + tolerance - tat) / interval_ + 1;
        h.reset = tat - now;
        h.retry_after = std::max<Time>(0, tat - tolerance - now);
        break;
      }
      case Algorithm::leaky_bucket: {
        const Time release = std::max(c.tat, now);
        const Time room = burst_ * interval_ - (release - now);
        h.limit = burst_;
        h.remaining = room < 0 ? 0 : room / interval_ + 1;
        h.reset = release - now;
        h.retry_after = std::max<Time>(0, -room);
        break;
      }
    }
    return h;
  }

  /// Sliding window counter: the first instant at which prev * (window - elapsed) + count *
  /// window <= (limit - 1) * window, i.e. one more request fits.
  Time sliding_retry(const ClientState& c, Time now) const {
    const Wide w = window_, room = limit_ - 1, count = c.count, prev = c.previous;
    const Time start = c.window_index * window_;
    if (count <= room &&
        prev > 0) {  // later in this window: elapsed >= (prev + count - room) w / prev
      const Wide need = (prev + count - room) * w;
      const Time elapsed = static_cast<Time>((need + prev - 1) / prev);
      if (elapsed < window_) return std::max<Time>(0, start + elapsed - now);
    }
    // In the next window the current count becomes `previous`: elapsed >= (count - room) w / count.
    const Time elapsed =
        count > room ? static_cast<Time>(((count - room) * w + count - 1) / count) : 0;
    return start + window_ + elapsed - now;
  }

  /// The measurement, not the limiter: most requests accepted in any window-length interval.
  void track_peak(std::uint32_t client, Time now) {
    Fifo<Time>& recent = recent_[global_ ? 0 : client];
    expire(recent, now);
    recent.push_back(now);
    peak_ = std::max(peak_, static_cast<std::int64_t>(recent.size()));
  }

  void answer(SlotHandle h, Outcome outcome) {
    Pending& p = pending_[h];
    if (p.answered) return;
    p.answered = true;
    ctx_.cancel(p.timeout);
    if (outcome == Outcome::ok) ok_latency_.record(ctx_.now() - p.request.arrival);
    ctx_.complete(p.request, outcome);
  }

  /// The request reaches the backend (a client that gave up meanwhile still costs its work).
  void enqueue(SlotHandle h) {
    if (backend_.submit(h, pending_[h].request.service) == Admission::rejected) {
      answer(h, Outcome::error);  // backend overload: 503
      return pending_.release(h);
    }
    queue_max_ = std::max(queue_max_, backend_.queued());
    queue_metric_.set(static_cast<double>(backend_.queued()));
  }

  void finish(SlotHandle h) {
    answer(h, Outcome::ok);
    pending_.release(h);
    queue_metric_.set(static_cast<double>(backend_.queued()));
  }

  Algorithm algorithm_;
  Context& ctx_;
  std::int64_t limit_;
  Time window_;
  std::int64_t burst_;
  bool global_;
  Time interval_ = 1;  // ns between two requests at the sustained rate
  int capacity_;
  Time timeout_;
  Server<SlotHandle> backend_;
  Metric& accepted_metric_;
  Metric& limited_metric_;
  Metric& queue_metric_;
  std::unordered_map<std::uint32_t, ClientState> clients_;  // looked up only, never iterated
  std::unordered_map<std::uint32_t, Fifo<Time>> recent_;    // accepted in the last window
  SlotPool<Pending> pending_;
  std::size_t queue_max_ = 0;
  std::int64_t accepted_ = 0, limited_ = 0, peak_ = 0;
  Time retry_after_total_ = 0;
  Histogram ok_latency_;
};

LessonInfo info() {
  return {
      "rate_limiting",
      "Rate limiting: fixed window, sliding log/counter, token bucket, leaky bucket, GCRA",
      "Without a limiter an API of fixed capacity hit by 10x its capacity queues everything: "
      "the queue and P99 explode and nobody is served in time. A fixed window counter limits "
      "the average but lets a client send its whole quota at the end of one window and again "
      "at the start of the next: twice the limit in one window-length interval.",
      "Reject the excess early with a 429 carrying limit, remaining, reset and retry-after, per "
      "client: a sliding log (exact), a sliding window counter (two counters, approximate), a "
      "token bucket or GCRA (sustained rate plus a bounded burst), or a leaky bucket that "
      "queues a bounded burst and releases it at a steady rate. Accepted traffic stays within "
      "capacity, so its P99 stays bounded.",
      {"Stripe API (token buckets per user)", "Cloudflare (sliding window counter)",
       "NGINX limit_req (leaky bucket)", "GitHub/Twitter APIs (X-RateLimit-* headers)",
       "redis-cell, Envoy global rate limit (GCRA)"},
      {{"none", true, "no limiter: the backend queues everything"},
       {"fixed_window", true, "a counter per window: 2x the limit at a window boundary"},
       {"sliding_log", false, "timestamps of the last window: exact, O(limit) memory"},
       {"sliding_window", false, "previous and current counters weighted: approximate, O(1)"},
       {"token_bucket", false, "tokens refill at `rate` up to `burst`"},
       {"leaky_bucket", false, "a queue of `burst` requests drained at `rate` (shaping)"},
       {"gcra", false, "generic cell rate algorithm: a token bucket in one timestamp"}},
      {{"limit", ParamType::integer, 100, "requests allowed per window per client", 1, 1e9},
       {"window", ParamType::duration, "1s", "window length", 1e-6, 86400},
       {"burst", ParamType::integer, 0,
        "token bucket/GCRA capacity, leaky bucket queue length (0: = limit)", 0, 1e9},
       {"rate", ParamType::real, 0.0,
        "token bucket/GCRA/leaky bucket requests per second (0: limit / window)", 0, 1e9},
       {"scope",
        ParamType::string,
        "client",
        "limit per client or one global limit",
        -1e300,
        1e300,
        {"client", "global"}},
       {"capacity", ParamType::integer, 10, "backend workers (requests served at once)", 1, 1e6},
       {"queue_limit", ParamType::integer, 10000000, "backend queue length before 503s", 0, 1e9},
       {"timeout", ParamType::duration, "10s", "client timeout: it stops waiting", 1e-6, 86400}},
      {{"kill_workers",
        "the backend loses workers (capacity drops below the limit)",
        {{"count", ParamType::integer, Value(), "workers lost", 1, 1e6}}},
       {"restore_workers", "the backend gets all its workers back", {}},
       {"limiter_state_lost",
        "the limiter's store (e.g. Redis) restarts: every client gets a full quota again",
        {}}},
      {{"headers",
        "limit, remaining, reset (s), retry_after (s) for a client right now",
        {{"client", ParamType::integer, 0, "client id", 0, 4294967295.0}}},
       {"counts", "requests accepted and limited (429) so far", {}},
       {"backend", "backend state: workers, busy, queued, queue_max", {}}},
      {{"accepted", MetricSpec::Kind::counter, "requests the limiter let through"},
       {"limited", MetricSpec::Kind::counter, "requests rejected with 429"},
       {"backend_queue", MetricSpec::Kind::gauge, "requests waiting in the backend queue"}},
      {{"accepted", Unit::count, "requests the limiter let through"},
       {"limited", Unit::count, "requests rejected with 429"},
       {"peak_per_window", Unit::count,
        "most requests accepted for one client in any window-length interval"},
       {"ok_p99", Unit::seconds, "P99 latency of the requests served in time"},
       {"queue_max", Unit::count, "longest backend queue"},
       {"retry_after_mean", Unit::seconds, "mean retry-after of the 429s"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Algorithm> algorithms[] = {
      {"none", Algorithm::none},
      {"fixed_window", Algorithm::fixed_window},
      {"sliding_log", Algorithm::sliding_log},
      {"sliding_window", Algorithm::sliding_window},
      {"token_bucket", Algorithm::token_bucket},
      {"leaky_bucket", Algorithm::leaky_bucket},
      {"gcra", Algorithm::gcra}};
  return std::make_unique<Limited>(variant_value(variant, algorithms), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
