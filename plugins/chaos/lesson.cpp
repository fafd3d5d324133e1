// Chaos engineering: replace hope with a steady-state hypothesis checked under real faults.
//
//   system:   client -> load balancer -> N app replicas (Server) -> cache (hit: answer)
//                                                               -> database (Server) on a miss
//   faults:   chaos_monkey (kill a random live replica every `interval`, back after `downtime`),
//             db_partition (calls to the database hang), db_latency (the link to the database
//             adds a delay), clock_skew (one replica's clock runs ahead or behind).
//   hypothesis, judged per window of arrivals:  success >= min_success  and  P99 < max_p99
//   naive:     lb.pick() round-robin over every replica, dead or not; no timeout, no retry:
//              a request sent to a dead replica, or waiting on a partitioned database, hangs
//              until the client's own deadline (a timeout outcome). Cache entries carry the
//              writer's timestamp and the reader judges their age by its own clock.
//   resilient: health checks eject a replica whose probe goes unanswered; every attempt has a
//              timeout, then a retry on another replica after a fully jittered backoff, paid
//              from a retry budget (tokens earned per request); a circuit breaker with a
//              timeout around the database, and on its failure the last cached value (stale
//              but an answer); the cache expires entries by its own clock (server-side TTL).
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hldlab/failure_window.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

/// One attempt of a request on a replica or at the database. An answer for an older attempt of
/// a request (the client moved on) is dropped.
struct Call {
  SlotHandle flight;
  std::uint32_t attempt = 0;
};

/// A client request in the system.
struct Flight {
  Request request;
  EventId deadline, attempt_timer, db_timer;
  std::uint32_t attempt = 0;
  int replica = -1;     // where the current attempt went
  bool probe = false;   // its database call is the breaker's half-open probe
  bool counted = true;  // arrived after the last reset_stats: its window counts it
};

struct CacheEntry {
  Time stamp = 0;    // when it was written, by the clock that judges it
  Time written = 0;  // when it was written, by true time
};

/// The steady-state hypothesis's view of one window of arrivals.
struct Window {
  std::int64_t arrived = 0, answered = 0, completed = 0;
  std::unique_ptr<Histogram> latency = std::make_unique<Histogram>();
  bool judged = false, held = false;
  double success = 1;  // set when judged
  Time p99 = 0;
};

/// Count-based circuit breaker: opens when `rate` of the last `window` calls failed.
struct Breaker {
  enum class State { closed, open, half_open } state = State::closed;
  FailureWindow outcomes;
  bool probe_out = false;
};

class ChaosSystem final : public System {
 public:
  ChaosSystem(bool resilient, const Params& p, Context& ctx)
      : resilient_(resilient),
        ctx_(ctx),
        ttl_(p.duration("cache_ttl")),
        db_time_(p.duration("db_time")),
        client_deadline_(p.duration("client_deadline")),
        timeout_(p.duration("timeout")),
        db_timeout_(p.duration("db_timeout")),
        max_attempts_(p.integer<std::uint32_t>("max_attempts")),
        backoff_(p.duration("backoff")),
        retry_ratio_(p.real("retry_ratio")),
        retry_reserve_(p.real("retry_reserve")),
        breaker_min_calls_(p.integer<std::size_t>("breaker_min_calls")),
        breaker_rate_(p.real("breaker_failure_rate")),
        breaker_open_(p.duration("breaker_open")),
        health_interval_(p.duration("health_interval")),
        health_timeout_(p.duration("health_timeout")),
        window_(p.duration("window")),
        min_success_(p.real("min_success")),
        max_p99_(p.duration("max_p99")),
        tokens_(retry_reserve_),
        jitter_salt_(ctx.salt("retry jitter")),
        monkey_rng_(ctx.salt("chaos monkey")),
        db_(ctx, {p.integer<int>("db_workers"), 10000}, [this](Call& c) { db_answered(c); }),
        breaker_{.outcomes = FailureWindow(p.integer<std::size_t>("breaker_window"))},
        hypothesis_ok_(ctx.metric("hypothesis_ok")),
        violations_metric_(ctx.metric("windows_violating")),
        kills_metric_(ctx.metric("kills")),
        retries_metric_(ctx.metric("retries")),
        timeouts_metric_{&ctx.metric("timeouts", "attempt"), &ctx.metric("timeouts", "database"),
                         &ctx.metric("timeouts", "client")},
        breaker_opens_metric_(ctx.metric("breaker_opens")),
        ejections_metric_(ctx.metric("health_ejections")),
        replicas_up_metric_(ctx.metric("replicas_in_rotation")),
        past_ttl_metric_(ctx.metric("served_past_ttl")) {
    const auto n = p.integer<int>("replicas");
    const Server<Call>::Options replica{p.integer<int>("replica_workers"),
                                        p.integer<std::size_t>("replica_queue")};
    for (int i = 0; i < n; ++i)
      replicas_.emplace_back(ctx, replica, [this](Call& c) { replica_done(c); });
    state_.assign(static_cast<std::size_t>(n), ReplicaState{});
    if (breaker_min_calls_ > breaker_.outcomes.size())
      throw std::invalid_argument("breaker_min_calls cannot exceed breaker_window");
    hypothesis_ok_.set(1);
    replicas_up_metric_.set(n);
    if (resilient_) ctx_.after(health_interval_, [this] { health_check(); });
    ctx_.after(window_ + client_deadline_ + 1, [this] { judge_closed_windows(); });
  }

  void handle(const Request& r) override {
    window_of(r.arrival).arrived++;
    const SlotHandle h = flights_.acquire();
    Flight& f = flights_[h];
    f = Flight{};
    f.request = r;
    const Time left = std::max<Time>(0, r.arrival + client_deadline_ - ctx_.now());
    f.deadline = ctx_.after(left, [this, h] { client_gives_up(h); });
    if (resilient_) tokens_ = std::min(retry_reserve_, tokens_ + retry_ratio_);
    f.attempt = 1;
    send(h, -1);
  }

  void inject(const std::string& fault, const Value& p) override {
    const Time now = ctx_.now();
    if (fault == "chaos_monkey") {
      const Time duration = p["duration"].as_int();
      monkey_until_ = duration > 0 ? now + duration : kForever;
      monkey_downtime_ = p["downtime"].as_int();
      const Time interval = p["interval"].as_int();
      ctx_.cancel(monkey_next_);
      monkey_next_ = ctx_.after(interval, [this, interval] { monkey_strikes(interval); });
    } else if (fault == "db_partition") {
      const Time duration = p["duration"].as_int();
      partition_until_ = duration > 0 ? now + duration : kForever;
      ctx_.log("database partitioned away");
    } else if (fault == "db_latency") {
      const Time duration = p["duration"].as_int();
      db_delay_ = p["delay"].as_int();
      latency_until_ = duration > 0 ? now + duration : kForever;
    } else if (fault == "clock_skew") {
      const auto i = p["replica"].as_int();
      if (i >= static_cast<std::int64_t>(replicas_.size()))
        throw std::invalid_argument("clock_skew: no replica " + std::to_string(i) + " (there are " +
                                    std::to_string(replicas_.size()) + ")");
      state_[static_cast<std::size_t>(i)].skew = p["offset"].as_int();
    }
  }

  Value call(const std::string& op, const Value&) override {
    List out;
    if (op == "kills") {
      for (const auto& [at, replica] : kill_log_)
        out.push_back(Map{{"at", to_seconds(at)}, {"replica", replica}});
      return out;
    }
    if (op != "windows") throw std::invalid_argument("unknown operation '" + op + "'");
    for (std::size_t i = 0; i < windows_.size(); ++i) {
      const Verdict v = verdict(i);
      if (v.arrived == 0) continue;
      out.push_back(Map{{"start", to_seconds((first_window_ + static_cast<Time>(i)) * window_)},
                        {"requests", v.arrived},
                        {"success", v.success},
                        {"p99", to_seconds(v.p99)},
                        {"held", v.held}});
    }
    return out;
  }

  Map figures() const override {
    std::int64_t arrived = 0, answered = 0, judged = 0, violating = 0;
    double worst_success = 1;
    Time worst_p99 = 0;
    for (std::size_t i = 0; i < windows_.size(); ++i) {
      const Verdict v = verdict(i);
      if (v.arrived == 0) continue;
      arrived += v.arrived;
      answered += windows_[i].answered;
      ++judged;
      violating += v.held ? 0 : 1;
      worst_success = std::min(worst_success, v.success);
      worst_p99 = std::max(worst_p99, v.p99);
    }
    return {{"availability",
             arrived ? static_cast<double>(answered) / static_cast<double>(arrived) : 1.0},
            {"windows", judged},
            {"windows_violating", violating},
            {"worst_window_success", worst_success},
            {"worst_window_p99", to_seconds(worst_p99)},
            {"kills", kills_},
            {"sent_to_dead", sent_to_dead_},
            {"max_dead_age", to_seconds(max_dead_age_)},
            {"retries", retries_},
            {"retries_denied", retries_denied_},
            {"attempt_timeouts", attempt_timeouts_},
            {"client_timeouts", client_timeouts_},
            {"db_calls", db_calls_},
            {"breaker_opens", breaker_opens_},
            {"health_ejections", ejections_},
            {"stale_fallbacks", stale_fallbacks_},
            {"served_past_ttl", served_past_ttl_}};
  }

  void reset_stats() override {
    windows_.clear();
    first_window_ = ctx_.now() / window_;
    kills_ = sent_to_dead_ = retries_ = retries_denied_ = attempt_timeouts_ = client_timeouts_ =
        db_calls_ = breaker_opens_ = ejections_ = stale_fallbacks_ = served_past_ttl_ = 0;
    max_dead_age_ = 0;
    kill_log_.clear();
    // Requests already in flight belong to no window now: they finish uncounted.
    flights_.for_each([](SlotHandle, Flight& f) { f.counted = false; });
    judged_ = 0;
  }

 private:
  static constexpr Time kForever = std::numeric_limits<Time>::max();

  struct ReplicaState {
    Time skew = 0;         // its clock reads true time + skew
    Time died_at = -1;     // -1: alive
    bool ejected = false;  // out of the load balancer's rotation (health checks)
    bool probing = false;  // a health probe is waiting for its answer
  };
  struct Verdict {
    std::int64_t arrived = 0;
    double success = 1;
    Time p99 = 0;
    bool held = true;
  };

  // --- the request path ---------------------------------------------------------------------

  /// The load balancer: round-robin over the replicas in rotation, never `avoid` (the replica
  /// the previous attempt failed on) when another is in rotation. -1: none in rotation.
  int pick(int avoid) {
    const int n = static_cast<int>(replicas_.size());
    int fallback = -1;
    for (int step = 0; step < n; ++step) {
      const int i = next_replica_;
      next_replica_ = (next_replica_ + 1) % n;
      if (state_[static_cast<std::size_t>(i)].ejected) continue;
      if (i != avoid) return i;
      fallback = i;
    }
    return fallback;
  }

  /// The current attempt of flight `h` goes to a replica.
  void send(SlotHandle h, int avoid) {
    Flight& f = flights_[h];
    const int i = pick(avoid);
    if (i < 0) return finish(h, Outcome::rejected);  // no healthy upstream
    f.replica = i;
    const ReplicaState& s = state_[static_cast<std::size_t>(i)];
    if (s.died_at >= 0) {
      ++sent_to_dead_;
      max_dead_age_ = std::max(max_dead_age_, ctx_.now() - s.died_at);
    }
    const std::uint32_t attempt = f.attempt;
    if (resilient_)
      f.attempt_timer = ctx_.after(timeout_, [this, h, attempt] { attempt_timed_out(h, attempt); });
    const Admission a =
        replicas_[static_cast<std::size_t>(i)].submit({h, attempt}, f.request.service);
    // Admission::down: the host is gone and the connection hangs; only a timer ends it.
    if (a == Admission::rejected) attempt_failed(h, Outcome::rejected);
  }

  Flight* current(const Call& c) {
    Flight* f = flights_.get(c.flight);
    return f != nullptr && f->attempt == c.attempt ? f : nullptr;
  }

  /// The replica did its work: answer from the cache when fresh, else ask the database.
  void replica_done(const Call& c) {
    Flight* f = current(c);
    if (f == nullptr) return;  // the client moved on: its answer would be dropped
    auto it = cache_.find(f->request.key);
    if (it != cache_.end() && fresh(it->second, f->replica)) {
      if (ctx_.now() - it->second.written >= ttl_) {
        ++served_past_ttl_;
        past_ttl_metric_.add(1);
      }
      return finish(c.flight, Outcome::hit);
    }
    if (resilient_ && !breaker_allows(*f)) return fall_back(c.flight);
    ++db_calls_;
    if (resilient_) {
      const std::uint32_t attempt = c.attempt;
      const SlotHandle h = c.flight;
      f->db_timer = ctx_.after(db_timeout_, [this, h, attempt] { db_timed_out(h, attempt); });
    }
    if (ctx_.now() < latency_until_)
      ctx_.after(db_delay_, [this, c] { reach_db(c); });
    else
      reach_db(c);
  }

  /// Naive: the reader judges the writer's timestamp by its own clock. Resilient: the cache
  /// expires entries by its own clock.
  bool fresh(const CacheEntry& e, int reader) const {
    return clock(resilient_ ? -1 : reader) - e.stamp < ttl_;
  }
  /// True time as replica `i` reads it (-1: the cache's own clock, never skewed).
  Time clock(int i) const {
    return ctx_.now() + (i < 0 ? 0 : state_[static_cast<std::size_t>(i)].skew);
  }

  void reach_db(const Call& c) {
    if (ctx_.now() < partition_until_) return;  // lost on the way: the caller hangs
    if (db_.submit(c, db_time_) == Admission::rejected) db_failed(c);
  }

  void db_answered(const Call& c) {
    if (ctx_.now() < partition_until_) return;  // the answer is lost on the way back
    Flight* f = current(c);
    if (f == nullptr) return;
    if (resilient_) {
      ctx_.cancel(f->db_timer);
      breaker_record(*f, true);
    }
    cache_[f->request.key] = {clock(resilient_ ? -1 : f->replica), ctx_.now()};
    finish(c.flight, Outcome::miss);  // answered by the database after a cache miss
  }

  void db_failed(const Call& c) {
    Flight* f = current(c);
    if (f == nullptr) return;
    if (!resilient_) return finish(c.flight, Outcome::error);
    ctx_.cancel(f->db_timer);
    breaker_record(*f, false);
    fall_back(c.flight);
  }

  void db_timed_out(SlotHandle h, std::uint32_t attempt) {
    Flight* f = flights_.get(h);
    if (f == nullptr || f->attempt != attempt) return;
    timeouts_metric_[1]->add(1);
    breaker_record(*f, false);
    fall_back(h);
  }

  /// The database failed us: the last cached value, however old, beats an error.
  void fall_back(SlotHandle h) {
    if (cache_.count(flights_[h].request.key) == 0) return finish(h, Outcome::error);
    ++stale_fallbacks_;
    finish(h, Outcome::ok);
  }

  void attempt_timed_out(SlotHandle h, std::uint32_t attempt) {
    Flight* f = flights_.get(h);
    if (f == nullptr || f->attempt != attempt) return;
    ++attempt_timeouts_;
    timeouts_metric_[0]->add(1);
    ctx_.cancel(f->db_timer);
    if (f->probe) breaker_record(*f, false);
    attempt_failed(h, Outcome::timeout);
  }

  /// Retry on another replica after a fully jittered exponential backoff, if attempts and
  /// budget are left; else the request fails with `outcome`.
  void attempt_failed(SlotHandle h, Outcome outcome) {
    Flight& f = flights_[h];
    if (!resilient_ || f.attempt >= max_attempts_) return finish(h, outcome);
    if (tokens_ < 1) {
      ++retries_denied_;
      return finish(h, outcome);
    }
    tokens_ -= 1;
    ++retries_;
    retries_metric_.add(1);
    ctx_.cancel(f.attempt_timer);
    const double u = Rng::uniform_at(jitter_salt_, f.request.id, f.attempt);
    const Time wait = round_time(u * static_cast<double>(backoff_) *
                                 std::ldexp(1.0, static_cast<int>(f.attempt) - 1));
    const std::uint32_t attempt = ++f.attempt;  // answers to the failed attempt are dropped now
    const int avoid = f.replica;
    f.attempt_timer = ctx_.after(wait, [this, h, attempt, avoid] {
      Flight* g = flights_.get(h);
      if (g != nullptr && g->attempt == attempt) send(h, avoid);
    });
  }

  void client_gives_up(SlotHandle h) {
    flights_[h].deadline = {};
    ++client_timeouts_;
    timeouts_metric_[2]->add(1);
    finish(h, Outcome::timeout);
  }

  void finish(SlotHandle h, Outcome outcome) {
    Flight& f = flights_[h];
    ctx_.cancel(f.deadline);
    ctx_.cancel(f.attempt_timer);
    ctx_.cancel(f.db_timer);
    if (f.probe) breaker_record(f, false);  // a probe abandoned unanswered: a failure
    if (f.counted) {
      Window& w = window_of(f.request.arrival);
      ++w.completed;
      if (outcome == Outcome::ok || outcome == Outcome::hit || outcome == Outcome::miss)
        ++w.answered;
      if (w.latency) w.latency->record(ctx_.now() - f.request.arrival);
    }
    ctx_.complete(f.request, outcome);
    flights_.release(h);
  }

  // --- circuit breaker around the database ---------------------------------------------------

  bool breaker_allows(Flight& f) {
    f.probe = false;
    if (breaker_.state == Breaker::State::closed) return true;
    if (breaker_.state == Breaker::State::open || breaker_.probe_out) return false;
    breaker_.probe_out = f.probe = true;  // half-open: one trial call
    return true;
  }

  void breaker_record(Flight& f, bool success) {
    Breaker& b = breaker_;
    if (f.probe) {
      f.probe = b.probe_out = false;
      if (b.state != Breaker::State::half_open) return;
      if (success) {
        b.state = Breaker::State::closed;
        b.outcomes.clear();
        ctx_.log("breaker closed");
      } else {
        open_breaker();
      }
      return;
    }
    if (b.state != Breaker::State::closed) return;
    b.outcomes.record(success);
    if (b.outcomes.tripped(breaker_min_calls_, breaker_rate_)) open_breaker();
  }

  void open_breaker() {
    breaker_.state = Breaker::State::open;
    ++breaker_opens_;
    breaker_opens_metric_.add(1);
    ctx_.after(breaker_open_, [this] { breaker_.state = Breaker::State::half_open; });
  }

  // --- faults and health checks ---------------------------------------------------------------

  void monkey_strikes(Time interval) {
    if (ctx_.now() >= monkey_until_) return;
    monkey_next_ = ctx_.after(interval, [this, interval] { monkey_strikes(interval); });
    std::vector<int> alive;
    for (std::size_t i = 0; i < replicas_.size(); ++i)
      if (replicas_[i].alive()) alive.push_back(static_cast<int>(i));
    if (alive.empty()) return;
    const int victim = alive[monkey_rng_.below(alive.size())];
    auto& server = replicas_[static_cast<std::size_t>(victim)];
    server.kill([](Call&) {});  // its requests are lost: their callers hang until a timer
    state_[static_cast<std::size_t>(victim)].died_at = ctx_.now();
    ++kills_;
    kills_metric_.add(1);
    kill_log_.emplace_back(ctx_.now(), victim);
    ctx_.log("chaos monkey killed replica " + std::to_string(victim));
    ctx_.after(monkey_downtime_, [this, victim] {
      replicas_[static_cast<std::size_t>(victim)].restart();
      state_[static_cast<std::size_t>(victim)].died_at = -1;
    });
  }

  /// Every health_interval, probe each replica: a live one answers at once (and rejoins the
  /// rotation), a dead one's probe times out after health_timeout and ejects it.
  void health_check() {
    ctx_.after(health_interval_, [this] { health_check(); });
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      ReplicaState& s = state_[i];
      if (replicas_[i].alive()) {
        if (s.ejected) set_ejected(i, false);
      } else if (!s.ejected && !s.probing) {
        s.probing = true;
        ctx_.after(health_timeout_, [this, i] {
          state_[i].probing = false;
          if (!replicas_[i].alive() && !state_[i].ejected) set_ejected(i, true);
        });
      }
    }
  }

  void set_ejected(std::size_t i, bool ejected) {
    state_[i].ejected = ejected;
    replicas_up_metric_.add(ejected ? -1 : 1);
    if (ejected) {
      ++ejections_;
      ejections_metric_.add(1);
    }
    ctx_.log("health check: replica " + std::to_string(i) + (ejected ? " ejected" : " back"));
  }

  // --- the steady-state hypothesis ------------------------------------------------------------

  Window& window_of(Time arrival) {
    const auto i = static_cast<std::size_t>(arrival / window_ - first_window_);
    while (windows_.size() <= i) windows_.emplace_back();
    return windows_[i];
  }

  /// The verdict on window `i`: final once judged, else from what is known now (requests of it
  /// still in flight count as failures, their age so far as their latency).
  Verdict verdict(std::size_t i) const {
    const Window& w = windows_[i];
    Verdict v;
    v.arrived = w.arrived;
    if (w.judged) {
      v.success = w.success, v.p99 = w.p99, v.held = w.held;
      return v;
    }
    if (w.arrived == 0) return v;
    v.success = static_cast<double>(w.answered) / static_cast<double>(w.arrived);
    if (w.completed == w.arrived) {
      v.p99 = w.latency->quantile(0.99);
    } else {
      Histogram all;
      all.merge(*w.latency);
      const Time start = (first_window_ + static_cast<Time>(i)) * window_;
      flights_.for_each([&](SlotHandle, const Flight& f) {
        if (f.counted && f.request.arrival >= start && f.request.arrival < start + window_)
          all.record(ctx_.now() - f.request.arrival);
      });
      v.p99 = all.quantile(0.99);
    }
    v.held = v.success >= min_success_ && v.p99 < max_p99_;
    return v;
  }

  /// Windows whose every request has surely ended (client deadline past) are judged for good:
  /// the live gauge hypothesis_ok follows the last of them.
  void judge_closed_windows() {
    ctx_.after(window_, [this] { judge_closed_windows(); });
    for (; judged_ < windows_.size(); ++judged_) {
      Window& w = windows_[judged_];
      const Time end = (first_window_ + static_cast<Time>(judged_) + 1) * window_;
      if (end + client_deadline_ >= ctx_.now()) break;
      const Verdict v = verdict(judged_);
      w.judged = true, w.success = v.success, w.p99 = v.p99, w.held = v.held;
      w.latency.reset();
      if (w.arrived == 0) continue;
      hypothesis_ok_.set(v.held ? 1 : 0);
      if (!v.held) violations_metric_.add(1);
    }
  }

  const bool resilient_;
  Context& ctx_;
  const Time ttl_, db_time_, client_deadline_, timeout_, db_timeout_;
  const std::uint32_t max_attempts_;
  const Time backoff_;
  const double retry_ratio_, retry_reserve_;
  const std::size_t breaker_min_calls_;
  const double breaker_rate_;
  const Time breaker_open_, health_interval_, health_timeout_, window_;
  const double min_success_;
  const Time max_p99_;
  double tokens_;
  const std::uint64_t jitter_salt_;
  Rng monkey_rng_;
  Server<Call> db_;
  std::deque<Server<Call>> replicas_;
  std::vector<ReplicaState> state_;
  int next_replica_ = 0;
  SlotPool<Flight> flights_;
  std::unordered_map<std::uint64_t, CacheEntry> cache_;
  Breaker breaker_;
  std::deque<Window> windows_;
  std::size_t judged_ = 0;  // windows before this one are judged for good
  Time first_window_ = 0;
  Time partition_until_ = -1, latency_until_ = -1, db_delay_ = 0;
  Time monkey_until_ = -1, monkey_downtime_ = 0;
  EventId monkey_next_;
  std::vector<std::pair<Time, int>> kill_log_;  // (when, which replica)
  Metric& hypothesis_ok_;
  Metric& violations_metric_;
  Metric& kills_metric_;
  Metric& retries_metric_;
  Metric* timeouts_metric_[3];
  Metric& breaker_opens_metric_;
  Metric& ejections_metric_;
  Metric& replicas_up_metric_;
  Metric& past_ttl_metric_;
  std::int64_t kills_ = 0, sent_to_dead_ = 0, retries_ = 0, retries_denied_ = 0,
               attempt_timeouts_ = 0, client_timeouts_ = 0, db_calls_ = 0, breaker_opens_ = 0,
               ejections_ = 0, stale_fallbacks_ = 0, served_past_ttl_ = 0;
  Time max_dead_age_ = 0;
};

LessonInfo info() {
  const ParamSpec duration{
      "duration", ParamType::duration, 0, "how long the fault lasts (0: until the end)", 0, 86400};
  return {
      "chaos",
      "Chaos engineering: a steady-state hypothesis under scheduled and random faults",
      "A service of a load balancer, app replicas, a cache and a database works in the demo, "
      "so it is hoped to survive production. It has no timeouts, no retries and no health "
      "checks: when a replica dies the balancer keeps sending it a share of the traffic and "
      "those requests hang until the client gives up; when the database is partitioned or "
      "slow every cache miss waits with it. Cache freshness is judged across machines' clocks, "
      "so a skewed clock serves data past its TTL. Nobody knows, because nobody tried.",
      "State a steady-state hypothesis (per window: success rate >= 99.9 %, P99 < 300 ms), "
      "inject the faults production will bring (kill random instances, partition and slow the "
      "database, skew a clock) and check it every window. Build what makes it hold: health "
      "checks that eject dead replicas, per-attempt timeouts, retries on another replica with "
      "jittered backoff and a retry budget, a circuit breaker with a timeout around the "
      "database and a stale-cache fallback, expiry by the cache's own clock.",
      {"Netflix Chaos Monkey / Simian Army",
       "Principles of Chaos Engineering (principlesofchaos.org)",
       "Gremlin, AWS Fault Injection Service, Chaos Mesh, LitmusChaos",
       "Envoy health checking, retry budgets and outlier detection", "Google SRE: DiRT exercises"},
      {{"naive", true, "no timeouts, no retries, no health checks, client-stamped cache TTL"},
       {"resilient", false,
        "health checks, attempt timeouts, jittered retries with a budget, database breaker with "
        "stale fallback, server-side cache TTL"}},
      {{"replicas", ParamType::integer, 4, "app replicas behind the load balancer", 1, 1024},
       {"replica_workers", ParamType::integer, 4, "requests a replica serves at once", 1, 1e6},
       {"replica_queue", ParamType::integer, 1000, "requests a replica queues (more: refused)", 0,
        1e9},
       {"db_workers", ParamType::integer, 8, "database calls served at once", 1, 1e6},
       {"db_time", ParamType::duration, "10ms", "database work per call", 0, 3600},
       {"cache_ttl", ParamType::duration, "2s", "how long a cached value counts as fresh", 1e-6,
        86400},
       {"client_deadline", ParamType::duration, "2s",
        "the client gives up after this (both variants): a timeout", 1e-6, 3600},
       {"window", ParamType::duration, "5s", "hypothesis: length of a window of arrivals", 1e-3,
        86400},
       {"min_success", ParamType::real, 0.999, "hypothesis: least share answered per window", 0, 1},
       {"max_p99", ParamType::duration, "300ms", "hypothesis: P99 latency must stay below this",
        1e-6, 3600},
       {"timeout", ParamType::duration, "100ms", "resilient: timeout of one attempt", 1e-6, 3600},
       {"max_attempts", ParamType::integer, 3, "resilient: attempts per request", 1, 100},
       {"backoff", ParamType::duration, "20ms",
        "resilient: retry k waits uniform(0, backoff * 2^(k-1)) (full jitter)", 0, 3600},
       {"retry_ratio", ParamType::real, 0.2, "resilient: retry tokens earned per request", 0, 10},
       {"retry_reserve", ParamType::real, 100, "resilient: retry tokens at most (and at start)", 0,
        1e9},
       {"db_timeout", ParamType::duration, "50ms", "resilient: timeout of a database call", 1e-6,
        3600},
       {"breaker_window", ParamType::integer, 20, "resilient: breaker judges the last calls", 1,
        1e6},
       {"breaker_min_calls", ParamType::integer, 10, "resilient: calls before it may open", 1, 1e6},
       {"breaker_failure_rate", ParamType::real, 0.5, "resilient: failure share that opens it",
        0.01, 1},
       {"breaker_open", ParamType::duration, "1s", "resilient: open time before a probe call", 1e-6,
        3600},
       {"health_interval", ParamType::duration, "500ms", "resilient: time between health probes",
        1e-6, 3600},
       {"health_timeout", ParamType::duration, "100ms",
        "resilient: an unanswered probe ejects the replica after this", 1e-6, 3600}},
      {{"chaos_monkey",
        "kill a random live replica every interval (from the system's own seeded stream: the "
        "same schedule in every variant); each comes back after downtime",
        {{"interval", ParamType::duration, "10s", "time between kills", 1e-3, 86400},
         {"downtime", ParamType::duration, "4s", "how long a killed replica stays down", 0, 86400},
         duration}},
       {"db_partition",
        "calls to the database (and its answers) are lost: callers hang",
        {duration}},
       {"db_latency",
        "the link to the database adds a delay to every call",
        {{"delay", ParamType::duration, "400ms", "added delay", 0, 3600}, duration}},
       {"clock_skew",
        "a replica's clock reads true time + offset (negative: behind); 0 puts it right",
        {{"replica", ParamType::integer, 0, "which replica", 0, 1023},
         {"offset", ParamType::duration, "10s", "clock offset", -86400, 86400}}}},
      {{"windows",
        "the hypothesis per window of arrivals: list of {start (s), requests, success, p99 (s), "
        "held}",
        {}},
       {"kills", "the chaos monkey's kills: list of {at (s), replica}", {}}},
      {{"hypothesis_ok", MetricSpec::Kind::gauge,
        "1 if the last judged window held the steady-state hypothesis, else 0"},
       {"windows_violating", MetricSpec::Kind::counter, "windows that broke the hypothesis"},
       {"kills", MetricSpec::Kind::counter, "replicas killed by the chaos monkey"},
       {"retries", MetricSpec::Kind::counter, "attempts retried on another replica"},
       {"timeouts",
        MetricSpec::Kind::counter,
        "timeouts that fired: attempt (resilient), database call (resilient), client deadline",
        "kind",
        {"attempt", "database", "client"}},
       {"breaker_opens", MetricSpec::Kind::counter, "times the database breaker opened"},
       {"health_ejections", MetricSpec::Kind::counter,
        "replicas ejected from the rotation by health checks"},
       {"replicas_in_rotation", MetricSpec::Kind::gauge, "replicas the load balancer sends to"},
       {"served_past_ttl", MetricSpec::Kind::counter,
        "cache hits on entries older than the TTL (true time)"}},
      {{"availability", Unit::fraction,
        "share of requests answered (cache hit, database answer or stale fallback)"},
       {"windows", Unit::count, "windows of arrivals judged"},
       {"windows_violating", Unit::count, "windows that broke the steady-state hypothesis"},
       {"worst_window_success", Unit::fraction, "lowest success rate of a window"},
       {"worst_window_p99", Unit::seconds, "highest P99 latency of a window"},
       {"kills", Unit::count, "replicas killed by the chaos monkey"},
       {"sent_to_dead", Unit::count, "attempts the load balancer sent to a dead replica"},
       {"max_dead_age", Unit::seconds,
        "longest time after a replica died that an attempt was still sent to it"},
       {"retries", Unit::count, "attempts retried"},
       {"retries_denied", Unit::count, "retries refused by the retry budget"},
       {"attempt_timeouts", Unit::count, "attempts that timed out"},
       {"client_timeouts", Unit::count, "requests ended by the client's deadline"},
       {"db_calls", Unit::count, "calls sent to the database"},
       {"breaker_opens", Unit::count, "times the database breaker opened"},
       {"health_ejections", Unit::count, "replicas ejected by health checks"},
       {"stale_fallbacks", Unit::count,
        "answers from an expired cache entry when the database failed"},
       {"served_past_ttl", Unit::count,
        "cache hits served as fresh on entries older than the TTL (true time)"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, bool> resilient[] = {{"naive", false}, {"resilient", true}};
  return std::make_unique<ChaosSystem>(variant_value(variant, resilient), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
