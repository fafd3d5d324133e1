// Scheduled notifications: "remind me at 9:00" is a job in a table; schedulers fire the jobs
// that are due; a pipeline sends them to providers (APNs, FCM, SMS) with rate limits.
//
//   problem:  single_cron -> one cron box fires, every tick, the jobs due since its last tick.
//               While it is down nothing fires, and when it restarts it goes on from the
//               current tick: the jobs due meanwhile are missed.
//             two_crons -> two boxes with the same crontab, for availability: every job fires
//               twice.
//   fix:      leased_shards -> jobs are split into shards; a node fires a shard only while it
//               holds the shard's lease (renewed every renew_every, expiring after `lease`).
//               A dead node's leases expire and another node takes them, and fires from where
//               the shard was last fired: nothing is missed, jobs are late by at most about
//               lease + tick. A node that was paused past its lease wakes up believing it still
//               owns its shards: each lease carries a fencing token, and the jobs table
//               refuses a fire with an older token than the shard's (fencing = false shows the
//               duplicates it prevents).
//   problem:  the three above send synchronously: the caller (or the scheduler) waits for the
//               provider; a provider over its rate limit answers 429 and a failing one 5xx:
//               the notification is lost; a slow one blocks the caller.
//   fix:      queued_pipeline -> leased shards + a queue: the caller is answered once the
//               notification is queued; a sender paces each provider below its rate limit,
//               retries failures after a jittered exponential backoff (uniform(0, min(cap,
//               base * 2^(attempt-1)))) and moves a notification that failed max_attempts
//               times to a dead-letter queue. Nothing is lost silently; a send that timed out
//               after the provider had accepted it is retried and delivered twice
//               (at-least-once).
//
// Model: a request is a notification: scheduled_share of them for later (due = arrival +
// uniform(0, schedule_horizon), acknowledged once stored, db_delay), the others to send now.
// Ticks happen every `tick` on a grid: tick k fires the jobs due in ((k-1) tick, k tick].
// Jobs are sharded by id. A provider (key % providers) accepts rate x time + burst sends (a
// token bucket; the rest get 429 in 5 ms), fails provider_failure of them (5xx), and answers
// after a lognormal latency; the sender gives up after send_timeout (the provider may still
// deliver). Draws are made per (notification, send): every variant sees the same ones.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/lognormal_durations.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant { single_cron, two_crons, leased_shards, queued_pipeline };

constexpr Time kRejectTime = milliseconds(5);  // a 429 comes back at once

/// One notification, from its request to its deliveries (kept for the figures).
struct Notice {
  std::uint64_t id = 0;  // its request's id: the key of its draws
  Time created = 0, due = 0;
  std::uint32_t provider = 0;
  std::uint16_t fires = 0;       // times a scheduler fired it
  std::uint16_t sends = 0;       // attempts made to the provider
  std::uint16_t deliveries = 0;  // times the provider accepted it
  bool scheduled = false;
  bool dead = false;  // in the dead-letter queue
};

/// The jobs of one shard, by the tick that fires them, and the shard's lease.
struct Shard {
  std::vector<std::vector<std::uint32_t>> buckets;  // tick index -> notices
  int owner = -1;
  std::uint64_t token = 0;  // fencing token of the current lease
  Time expires = 0;
  std::int64_t fired_through = 0;  // the last tick its legitimate owner fired
};

/// What a node believes about a shard.
struct View {
  bool owns = false;
  std::uint64_t token = 0;
  std::int64_t cursor = 0;  // the last tick it fired
};

struct Node {
  bool alive = true;
  Time paused_until = 0;
  std::vector<View> views;  // per shard
};

enum class Answer : std::uint8_t { ok, rate_limited, failed, timed_out };

/// One notification on its way to the provider (a synchronous call, or a queued message with
/// its attempts).
struct Message {
  Request request;  // the caller waiting for a synchronous send
  std::uint32_t notice = 0;
  std::uint32_t attempts = 0;
  bool answers = false;
  Answer answer = Answer::ok;
};

struct Provider {
  double tokens = 0;
  Time refilled = 0;
  Time next_slot = 0;     // queued_pipeline: the next send slot (pacing)
  Time outage_until = 0;  // every send fails until then
  Time slow_until = 0;
  double slow = 1;  // latency multiplier until slow_until
};

std::int64_t ceil_div(Time t, Time d) {
  return t <= 0 ? 0 : (t + d - 1) / d;
}

class Notifications final : public System {
 public:
  Notifications(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        scheduled_share_(p.real("scheduled_share")),
        horizon_(p.duration("schedule_horizon")),
        tick_(p.duration("tick")),
        lease_(p.duration("lease")),
        renew_every_(p.duration("renew_every")),
        fencing_(p.boolean("fencing")),
        db_delay_(p.duration("db_delay")),
        rate_(p.real("provider_rate")),
        burst_(p.real("provider_burst")),
        failure_(p.real("provider_failure")),
        timeout_(p.duration("send_timeout")),
        send_interval_(round_time(1e9 / p.real("send_rate"))),
        max_attempts_(p.integer<std::uint32_t>("max_attempts")),
        backoff_base_(p.duration("backoff_base")),
        backoff_cap_(p.duration("backoff_cap")),
        enqueue_time_(p.duration("enqueue_time")),
        latency_(lognormal_durations(p, "provider_latency")),
        draw_salt_(ctx.salt("schedules, provider answers and backoffs")),
        fires_metric_(ctx.metric("fires")),
        missed_metric_(ctx.metric("missed")),
        sends_metric_(ctx.metric("sends", "ok")),
        limited_metric_(ctx.metric("sends", "rate_limited")),
        failed_metric_(ctx.metric("sends", "failed")),
        timed_out_metric_(ctx.metric("sends", "timed_out")),
        queue_metric_(ctx.metric("queue_depth")),
        lag_metric_(ctx.metric("send_lag_seconds")),
        dlq_metric_(ctx.metric("dead_lettered")),
        fenced_metric_(ctx.metric("fenced")) {
    if (tick_ <= 0 || renew_every_ <= 0)
      throw std::invalid_argument("tick and renew_every must be positive");
    const int nodes = variant == Variant::single_cron ? 1
                      : variant == Variant::two_crons ? 2
                                                      : p.integer<int>("nodes");
    const std::size_t shards = leased() ? p.integer<std::size_t>("shards") : 1;
    shards_.resize(shards);
    nodes_.resize(static_cast<std::size_t>(nodes));
    for (Node& n : nodes_) n.views.resize(shards);
    providers_.resize(p.integer<std::size_t>("providers"));
    for (Provider& pr : providers_) pr.tokens = burst_;
    if (leased()) {
      lease_round();  // every shard goes to its preferred node
      ctx_.after(renew_every_, [this] { renew(); });
    } else {
      for (Node& n : nodes_) n.views[0].owns = true;  // every box has the whole crontab
    }
    ctx_.after(tick_, [this] { tick(); });
  }

  void handle(const Request& r) override {
    Rng draw(Rng::hash(r.id ^ draw_salt_));
    Notice n;
    n.id = r.id;
    n.created = n.due = ctx_.now();
    n.provider = static_cast<std::uint32_t>(r.key % providers_.size());
    n.scheduled = draw.chance(scheduled_share_);
    if (n.scheduled) n.due += round_time(draw.uniform() * static_cast<double>(horizon_));
    const auto index = static_cast<std::uint32_t>(notices_.size());
    notices_.push_back(n);
    if (!n.scheduled) return send_now(index, &r);
    schedule(index);
    const SlotHandle h = stored_.acquire();
    stored_[h] = r;
    ctx_.after(db_delay_, [this, h] {
      ctx_.complete(stored_[h], Outcome::ok);
      stored_.release(h);
    });
  }

  void inject(const std::string& fault, const Value& p) override {
    const Time duration = p["duration"].as_int();
    if (fault == "crash" || fault == "pause") {
      const std::int64_t index = p["node"].as_int();
      if (index >= static_cast<std::int64_t>(nodes_.size()))
        throw std::invalid_argument("node " + std::to_string(index) + " does not exist: " +
                                    std::to_string(nodes_.size()) + " scheduler node(s)");
      return fault == "crash" ? crash(static_cast<std::size_t>(index), duration)
                              : pause(static_cast<std::size_t>(index), duration);
    }
    const std::int64_t index = p["provider"].as_int();
    if (index >= static_cast<std::int64_t>(providers_.size()))
      throw std::invalid_argument("provider " + std::to_string(index) + " does not exist");
    Provider& pr = providers_[static_cast<std::size_t>(index)];
    if (fault == "provider_outage") {
      pr.outage_until = ctx_.now() + duration;
    } else {  // slow_provider
      pr.slow = p["factor"].as_double();
      pr.slow_until = ctx_.now() + duration;
    }
  }

  Value call(const std::string&, const Value&) override {
    List out;  // "shards": who owns what
    for (const Shard& s : shards_)
      out.push_back(Map{{"owner", s.owner},
                        {"token", static_cast<std::int64_t>(s.token)},
                        {"fired_through", to_seconds(s.fired_through * tick_)}});
    return out;
  }

  Map figures() const override {
    std::int64_t notifications = 0, missed = 0, fired_twice = 0, delivered = 0, duplicates = 0,
                 lost = 0, dead = 0;
    for (const Notice& n : notices_) {
      if (n.created < counting_from_) continue;
      ++notifications;
      if (n.scheduled && n.fires == 0) {
        missed += n.due + takeover_bound() <= ctx_.now();  // else it may still fire
        continue;
      }
      fired_twice += n.fires > 1;
      dead += n.dead;
      if (n.deliveries > 0) {
        ++delivered;
        duplicates += n.deliveries - 1;
      } else if (!n.dead) {
        ++lost;
      }
    }
    return {{"notifications", notifications},
            {"missed", missed},
            {"fired_twice", fired_twice},
            {"fire_delay_max", to_seconds(fire_delay_.max())},
            {"delivered", delivered},
            {"duplicates", duplicates},
            {"lost", lost},
            {"dead_lettered", dead},
            {"delivery_delay_p99", to_seconds(delivery_delay_.quantile(0.99))},
            {"rate_limited", rate_limited_},
            {"retries", retries_},
            {"backoff_mean", to_seconds(static_cast<Time>(backoff_.mean()))},
            {"fenced", fenced_},
            {"takeovers", takeovers_}};
  }

  void reset_stats() override {
    rate_limited_ = retries_ = fenced_ = takeovers_ = 0;
    fire_delay_.reset();
    delivery_delay_.reset();
    backoff_.reset();
    counting_from_ = ctx_.now();
  }

 private:
  bool leased() const {
    return variant_ == Variant::leased_shards || variant_ == Variant::queued_pipeline;
  }
  bool queued() const { return variant_ == Variant::queued_pipeline; }
  bool counted(const Notice& n) const { return n.created >= counting_from_; }
  bool active(const Node& n) const { return n.alive && ctx_.now() >= n.paused_until; }
  /// How late a job can fire when its shard is taken over (a lease expiring, the next renewal
  /// round, the next tick), plus a tick of margin.
  Time takeover_bound() const { return lease_ + renew_every_ + 2 * tick_; }

  // ---- scheduling -------------------------------------------------------------------------

  /// Store a job in its shard, under the tick that will fire it (the next one if that tick
  /// has passed).
  void schedule(std::uint32_t index) {
    const Notice& n = notices_[index];
    const std::int64_t tick = std::max(ceil_div(n.due, tick_), ticks_done_ + 1);
    Shard& shard = shards_[Rng::hash(n.id) % shards_.size()];
    if (shard.buckets.size() <= static_cast<std::size_t>(tick))
      shard.buckets.resize(static_cast<std::size_t>(tick) + 1);
    shard.buckets[static_cast<std::size_t>(tick)].push_back(index);
    // The drain waits until every job could have fired, late by a takeover at most.
    last_due_ = std::max(last_due_, tick * tick_ + takeover_bound());
    if (!waiting_for_jobs_) {
      waiting_for_jobs_ = true;
      ctx_.hold();
      ctx_.after(last_due_ - ctx_.now(), [this] { jobs_done(); });
    }
  }
  void jobs_done() {
    if (ctx_.now() < last_due_) {
      ctx_.after(last_due_ - ctx_.now(), [this] { jobs_done(); });
      return;
    }
    waiting_for_jobs_ = false;
    ctx_.release();
  }

  void tick() {
    ++ticks_done_;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (active(nodes_[i])) fire_due(i);
    ctx_.after(tick_, [this] { tick(); });
  }

  /// Node `i` fires, for every shard it believes it owns, the ticks it has not fired yet.
  void fire_due(std::size_t i) {
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      View& view = nodes_[i].views[s];
      if (!view.owns) continue;
      Shard& shard = shards_[s];
      const bool stale = leased() && view.token < shard.token;
      if (stale && fencing_) {
        // The jobs table refuses the claim: a newer lease exists. The node lets the shard go.
        std::int64_t refused = 0;
        for_jobs(shard, view.cursor, ticks_done_, [&](std::uint32_t) { ++refused; });
        fenced_ += refused;
        fenced_metric_.add(static_cast<double>(refused));
        view.owns = false;
        continue;
      }
      for_jobs(shard, view.cursor, ticks_done_, [this](std::uint32_t index) { fire(index); });
      view.cursor = ticks_done_;
      if (!stale) shard.fired_through = std::max(shard.fired_through, ticks_done_);
    }
  }
  /// f(notice index) for every job of `shard` fired by the ticks (after, through].
  template <class F>
  static void for_jobs(const Shard& shard, std::int64_t after, std::int64_t through, F&& f) {
    const auto end = std::min(static_cast<std::size_t>(through) + 1, shard.buckets.size());
    for (auto t = static_cast<std::size_t>(after) + 1; t < end; ++t)
      for (std::uint32_t index : shard.buckets[t]) f(index);
  }

  void fire(std::uint32_t index) {
    Notice& n = notices_[index];
    if (n.fires++ == 0 && counted(n)) fire_delay_.record(ctx_.now() - n.due);
    fires_metric_.add(1);
    send_now(index, nullptr);
  }

  /// Every node renews the leases it holds; expired leases go to the first active node from
  /// the shard's preferred one (shard % nodes).
  void lease_round() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!active(nodes_[i])) continue;
      for (std::size_t s = 0; s < shards_.size(); ++s) {
        View& view = nodes_[i].views[s];
        if (!view.owns) continue;
        if (shards_[s].owner == static_cast<int>(i) && shards_[s].token == view.token)
          shards_[s].expires = ctx_.now() + lease_;
        else
          view.owns = false;  // it finds a newer lease: it lost the shard
      }
    }
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      Shard& shard = shards_[s];
      if (shard.owner >= 0 && shard.expires > ctx_.now()) continue;
      for (std::size_t k = 0; k < nodes_.size(); ++k) {
        const std::size_t i = (s + k) % nodes_.size();
        if (!active(nodes_[i])) continue;
        if (shard.token > 0) ++takeovers_;
        shard.owner = static_cast<int>(i);
        shard.expires = ctx_.now() + lease_;
        nodes_[i].views[s] = {true, ++shard.token, shard.fired_through};
        break;
      }
    }
  }
  void renew() {
    lease_round();
    ctx_.after(renew_every_, [this] { renew(); });
  }

  void crash(std::size_t i, Time duration) {
    Node& node = nodes_[i];
    if (!node.alive) throw std::invalid_argument("node " + std::to_string(i) + " is already down");
    node.alive = false;
    for (View& v : node.views) v.owns = false;  // its memory is gone
    ctx_.log("scheduler node " + std::to_string(i) + " crashed");
    ctx_.after(duration, [this, i] {
      Node& back = nodes_[i];
      back.alive = true;
      // A cron box starts from the current tick: what was due while it was down is skipped.
      if (!leased()) {
        for_jobs(shards_[0], back.views[0].cursor, ticks_done_, [this](std::uint32_t index) {
          if (notices_[index].fires == 0) missed_metric_.add(1);
        });
        back.views[0] = {true, 0, ticks_done_};
      }
      ctx_.log("scheduler node " + std::to_string(i) + " restarted");
    });
  }

  void pause(std::size_t i, Time duration) {
    nodes_[i].paused_until = std::max(nodes_[i].paused_until, ctx_.now() + duration);
    ctx_.after(duration, [this, i] {
      // It wakes up where it stopped: the overdue tick runs before anything else.
      if (nodes_[i].alive && active(nodes_[i])) fire_due(i);
    });
  }

  // ---- sending ------------------------------------------------------------------------------

  /// Hand a notification to the pipeline: a synchronous call (the caller, if any, waits) or
  /// the queue (the caller is answered once it is queued).
  void send_now(std::uint32_t index, const Request* caller) {
    const SlotHandle h = messages_.acquire();
    queue_metric_.set(static_cast<double>(messages_.in_use()));
    Message& m = messages_[h];
    m = Message{};
    m.notice = index;
    ctx_.hold();  // released when it leaves the pipeline (delivered, failed, dead-lettered)
    if (queued()) {
      if (caller != nullptr) {
        const SlotHandle ack = stored_.acquire();
        stored_[ack] = *caller;
        ctx_.after(enqueue_time_, [this, ack] {
          ctx_.complete(stored_[ack], Outcome::ok);
          stored_.release(ack);
        });
      }
      return pace(h);
    }
    if (caller != nullptr) {
      m.request = *caller;
      m.answers = true;
    }
    attempt(h);
  }

  /// queued_pipeline: wait for the provider's next send slot (1 / send_rate apart).
  void pace(SlotHandle h) {
    Provider& pr = providers_[notices_[messages_[h].notice].provider];
    const Time at = std::max(ctx_.now(), pr.next_slot);
    pr.next_slot = at + send_interval_;
    lag_metric_.set(to_seconds(at - ctx_.now()));
    ctx_.after(at - ctx_.now(), [this, h] { attempt(h); });
  }

  /// Call the provider: it answers now what the sender will hear after the latency (or the
  /// timeout), and delivers at once when it accepts.
  void attempt(SlotHandle h) {
    Message& m = messages_[h];
    Notice& n = notices_[m.notice];
    Provider& pr = providers_[n.provider];
    Rng draw(Rng::hash(Rng::hash(n.id ^ draw_salt_) ^ n.sends));
    ++n.sends;
    ++m.attempts;
    Time answer_in = kRejectTime;
    if (!take_token(pr)) {
      m.answer = Answer::rate_limited;
      if (counted(n)) ++rate_limited_;
      limited_metric_.add(1);
    } else {
      Time latency = latency_.sample_time(draw);
      if (ctx_.now() < pr.slow_until) latency = scale_time(latency, pr.slow);
      const bool failed = draw.chance(failure_) || ctx_.now() < pr.outage_until;
      // Accepted now, delivered to the device once the provider has processed it.
      if (!failed && n.deliveries++ == 0 && counted(n))
        delivery_delay_.record(ctx_.now() + latency - n.due);
      m.answer = failed ? Answer::failed : Answer::ok;
      answer_in = latency;
      if (latency > timeout_) {
        m.answer = Answer::timed_out;
        answer_in = timeout_;
      }
      (m.answer == Answer::ok       ? sends_metric_
       : m.answer == Answer::failed ? failed_metric_
                                    : timed_out_metric_)
          .add(1);
    }
    ctx_.after(answer_in, [this, h] { answered(h); });
  }

  bool take_token(Provider& pr) {
    const double elapsed = to_seconds(ctx_.now() - pr.refilled);
    pr.tokens = std::min(burst_, pr.tokens + elapsed * rate_);
    pr.refilled = ctx_.now();
    if (pr.tokens < 1) return false;
    pr.tokens -= 1;
    return true;
  }

  void answered(SlotHandle h) {
    Message& m = messages_[h];
    if (!queued()) {
      if (m.answers) {
        static constexpr Outcome outcomes[] = {Outcome::ok, Outcome::error, Outcome::error,
                                               Outcome::timeout};
        ctx_.complete(m.request, outcomes[static_cast<int>(m.answer)]);
      }
      done(h);
      return;
    }
    if (m.answer == Answer::ok) return done(h);
    Notice& n = notices_[m.notice];
    if (m.attempts >= max_attempts_) {
      n.dead = true;
      dlq_metric_.add(1);
      return done(h);
    }
    // Full jitter: uniform(0, min(cap, base * 2^(attempts - 1))).
    const double ceiling = std::min(
        static_cast<double>(backoff_cap_),
        static_cast<double>(backoff_base_) * std::ldexp(1.0, static_cast<int>(m.attempts) - 1));
    Rng draw(Rng::hash(Rng::hash(n.id ^ draw_salt_ ^ 0x6261636b6f6666ULL) ^ m.attempts));
    const Time backoff = round_time(draw.uniform() * ceiling);
    if (counted(n)) {
      ++retries_;
      backoff_.record(backoff);
    }
    ctx_.after(backoff, [this, h] { pace(h); });
  }
  /// The notification leaves the pipeline (and its hold ends).
  void done(SlotHandle h) {
    messages_.release(h);
    queue_metric_.set(static_cast<double>(messages_.in_use()));
    ctx_.release();
  }

  Variant variant_;
  Context& ctx_;
  double scheduled_share_;
  Time horizon_, tick_, lease_, renew_every_;
  bool fencing_;
  Time db_delay_;
  double rate_, burst_, failure_;
  Time timeout_, send_interval_;
  std::uint32_t max_attempts_;
  Time backoff_base_, backoff_cap_, enqueue_time_;
  Distribution latency_;
  std::uint64_t draw_salt_;
  Metric &fires_metric_, &missed_metric_, &sends_metric_, &limited_metric_, &failed_metric_,
      &timed_out_metric_, &queue_metric_, &lag_metric_, &dlq_metric_, &fenced_metric_;

  std::vector<Notice> notices_;
  std::vector<Shard> shards_;
  std::vector<Node> nodes_;
  std::vector<Provider> providers_;
  SlotPool<Message> messages_;
  SlotPool<Request> stored_;  // requests answered after a fixed delay (stored, queued)
  std::int64_t ticks_done_ = 0;
  Time last_due_ = 0;
  bool waiting_for_jobs_ = false;

  Time counting_from_ = 0;
  std::int64_t rate_limited_ = 0, retries_ = 0, fenced_ = 0, takeovers_ = 0;
  Histogram fire_delay_, delivery_delay_, backoff_;
};

LessonInfo info() {
  return {
      "scheduler_notifications",
      "Scheduled notifications: a cron box vs sharded schedulers with leases, and a queued "
      "sending pipeline",
      "One cron machine is a single point of failure: the jobs due while it is down are "
      "missed. A second machine with the same crontab runs every job twice. Sending "
      "synchronously to providers with rate limits and failures loses notifications (429, "
      "5xx) and makes the caller wait for the provider.",
      "Shard the jobs and let a node fire a shard only while it holds the shard's lease; a dead "
      "node's leases expire and another node fires from where the shard stopped, so nothing is "
      "missed and nothing runs twice, jobs are only late by about the lease; a fencing token "
      "refuses the fires of a node that was paused past its lease. Queue notifications: the "
      "caller is answered at once, a sender paces each provider below its rate limit, retries "
      "with jittered exponential backoff and dead-letters what keeps failing.",
      {"Airbnb Dynein, Quartz JDBC job store (clustered scheduler with row locks and misfire "
       "handling)",
       "Kubernetes CronJob controller; leader election with leases (etcd, ZooKeeper, "
       "Kubernetes Lease objects)",
       "Uber Cherami / Amazon SQS + Lambda fan-out; AWS SNS, Firebase Cloud Messaging, APNs "
       "rate limits",
       "AWS Architecture Blog, \"Exponential Backoff and Jitter\" (2015); dead-letter queues "
       "(SQS redrive policy)",
       "M. Kleppmann, \"How to do distributed locking\" (2016): fencing tokens"},
      {{"single_cron", true,
        "one cron box, synchronous sends: misses what is due while it is down"},
       {"two_crons", true, "two cron boxes with the same crontab: every job fires twice"},
       {"leased_shards", false,
        "sharded schedulers with leases and fencing (sends still synchronous)"},
       {"queued_pipeline", false,
        "leased shards + queue, pacing, jittered retries, dead-letter queue"}},
      {{"scheduled_share", ParamType::real, 0.5,
        "share of requests that schedule a notification for later (the rest send now)", 0, 1},
       {"schedule_horizon", ParamType::duration, "30s",
        "a scheduled notification is due uniform(0, this) after its request", 0, 1e7},
       {"tick", ParamType::duration, "1s", "schedulers fire due jobs every tick", 1e-6, 3600},
       {"nodes", ParamType::integer, 3, "scheduler nodes of the leased variants", 1, 1000},
       {"shards", ParamType::integer, 12, "job shards of the leased variants", 1, 1e5},
       {"lease", ParamType::duration, "5s", "a lease not renewed for this long expires", 1e-6,
        3600},
       {"renew_every", ParamType::duration, "1s",
        "lease holders renew (and free leases are taken) this often", 1e-6, 3600},
       {"fencing", ParamType::boolean, true,
        "leased variants: the jobs table refuses fires with an older lease token"},
       {"db_delay", ParamType::duration, "2ms", "storing a scheduled job before the answer", 0, 60},
       {"providers", ParamType::integer, 2, "providers; a notification goes to key % providers", 1,
        1000},
       {"provider_rate", ParamType::real, 100.0, "sends per second a provider accepts", 1e-3, 1e9},
       {"provider_burst", ParamType::real, 20.0, "token bucket size of a provider's limit", 1, 1e9},
       {"provider_latency_median", ParamType::duration, "50ms", "provider answer time: median",
        1e-6, 3600},
       {"provider_latency_p99", ParamType::duration, "500ms", "... and its 99th percentile", 1e-6,
        3600},
       {"provider_failure", ParamType::real, 0.02, "share of sends the provider fails (5xx)", 0, 1},
       {"send_timeout", ParamType::duration, "1s",
        "the sender gives up waiting (the provider may still deliver)", 1e-6, 3600},
       {"send_rate", ParamType::real, 90.0,
        "queued_pipeline: sends per second per provider (pacing below its limit)", 1e-3, 1e9},
       {"max_attempts", ParamType::integer, 6,
        "queued_pipeline: attempts before the dead-letter queue", 1, 1000},
       {"backoff_base", ParamType::duration, "500ms", "queued_pipeline: first backoff ceiling", 0,
        3600},
       {"backoff_cap", ParamType::duration, "30s", "queued_pipeline: largest backoff ceiling", 0,
        86400},
       {"enqueue_time", ParamType::duration, "2ms",
        "queued_pipeline: answer to the caller once queued", 0, 60}},
      {{"crash",
        "scheduler node `node` crashes (its memory is lost) and restarts after `duration`",
        {{"node", ParamType::integer, 0, "the node", 0, 999},
         {"duration", ParamType::duration, "10s", "how long it is down", 0, 1e7}}},
       {"pause",
        "scheduler node `node` freezes for `duration` (a GC or VM pause), then goes on where it "
        "stopped",
        {{"node", ParamType::integer, 0, "the node", 0, 999},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"provider_outage",
        "every send to provider `provider` fails (5xx) for `duration`",
        {{"provider", ParamType::integer, 0, "the provider", 0, 999},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"slow_provider",
        "provider `provider` answers `factor` times slower for `duration`",
        {{"provider", ParamType::integer, 0, "the provider", 0, 999},
         {"factor", ParamType::real, 10.0, "latency multiplier", 1e-3, 1e6},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}}},
      {{"shards", "every shard's lease owner, token and the time it was fired through", {}}},
      {{"fires", MetricSpec::Kind::counter, "jobs fired by schedulers (repeats included)"},
       {"missed", MetricSpec::Kind::counter, "jobs a restarted cron box skipped"},
       {"sends",
        MetricSpec::Kind::counter,
        "attempts to providers, by result",
        "result",
        {"ok", "rate_limited", "failed", "timed_out"}},
       {"queue_depth", MetricSpec::Kind::gauge,
        "notifications in the pipeline (waiting for a slot, backing off or in flight)"},
       {"send_lag_seconds", MetricSpec::Kind::gauge,
        "queued_pipeline: wait for a send slot of the notification paced last"},
       {"dead_lettered", MetricSpec::Kind::counter, "notifications moved to the dead-letter queue"},
       {"fenced", MetricSpec::Kind::counter, "fires refused for an older lease token"}},
      {{"notifications", Unit::count, "notifications requested"},
       {"missed", Unit::count,
        "scheduled notifications not fired by their due time + lease + renew_every + 2 ticks"},
       {"fired_twice", Unit::count, "scheduled notifications fired more than once"},
       {"fire_delay_max", Unit::seconds, "latest first fire after the due time"},
       {"delivered", Unit::count, "notifications the provider accepted at least once"},
       {"duplicates", Unit::count, "deliveries beyond the first"},
       {"lost", Unit::count, "notifications sent but never delivered nor dead-lettered"},
       {"dead_lettered", Unit::count,
        "notifications moved to the dead-letter queue (a timed-out attempt may have delivered)"},
       {"delivery_delay_p99", Unit::seconds, "99th percentile of due time -> first delivery"},
       {"rate_limited", Unit::count, "sends refused by a provider's rate limit (429)"},
       {"retries", Unit::count, "queued_pipeline: sends retried after a backoff"},
       {"backoff_mean", Unit::seconds, "queued_pipeline: mean backoff before a retry"},
       {"fenced", Unit::count, "fires refused for an older lease token"},
       {"takeovers", Unit::count, "expired leases taken over by another node"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"single_cron", Variant::single_cron},
      {"two_crons", Variant::two_crons},
      {"leased_shards", Variant::leased_shards},
      {"queued_pipeline", Variant::queued_pipeline}};
  return std::make_unique<Notifications>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
