// Idempotency keys: a payment API must charge each purchase exactly once, although the network
// loses answers and the client retries.
//
//   client:   for attempt in 1..max_attempts:
//               send charge(purchase); wait for the answer at most `timeout`
//               answer "charged"                 -> done: ok
//               answer "busy" or "in progress"   -> back off, try again
//               no answer                        -> charged or not? the client cannot know
//   problem:  no_retry         -> give up on the first timeout: the user sees a failure, yet the
//                                 card was charged (charged_but_failed)
//             retry            -> retry on a timeout: when only the answer was lost, the first
//                                 charge went through, and every retry is one more charge
//                                 (double_charges)
//             key_after_charge -> if store[key] is done: replay it; else charge, then
//                                 store[key] = done. A retry arriving while the first charge is
//                                 still running finds no key and charges again (check-then-act)
//   fix:      idempotency_key  -> the client sends the same key on every attempt; the service:
//                 store[key] done        -> replay the stored answer, no charge
//                 store[key] in progress -> answer 409 "in progress, retry later", no charge
//                 absent (or expired)    -> store[key] = in progress; charge;
//                                           store[key] = done, kept for key_ttl
//             a retry arriving more than key_ttl after the charge finds no key: charged again.
//
// Model: one workload request = one purchase, keyed by its request id. Each attempt crosses the
// network (network_delay each way), waits for one of `workers` in a FIFO queue (beyond
// queue_limit: "busy", not charged) and takes the request's service time: the charge commits
// when it ends. Which answers the drop_responses fault loses, and the jitter of each backoff, are
// functions of (purchase, attempt), so every variant loses the same answers and sleeps the same
// sleeps: the network and the clients are part of the identical traffic.
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>

#include "hldlab/fifo.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant { no_retry, retry, key_after_charge, idempotency_key };

/// What the service answers to one attempt.
enum class Answer : std::uint8_t { charged, busy, in_progress };

/// One purchase, from the client's point of view. The slot lives until the client is done and
/// every attempt it sent has been answered or lost, so late attempts still find it.
struct Purchase {
  Request request;
  EventId timeout{};              // the timeout of the attempt awaited; none: none is awaited
  std::uint32_t attempts = 0;     // attempts sent
  std::uint32_t outstanding = 0;  // attempts still at the service or on the network
  std::uint32_t charges = 0;      // charges committed for this purchase
  bool done = false;              // the client has completed the request
  bool held = false;              // done with attempts outstanding: Context::hold() taken
};

/// One attempt of a purchase, from the moment it is sent until its answer arrives or is lost.
struct Attempt {
  SlotHandle purchase;
  std::uint32_t number = 0;  // 1 for the first attempt
  Answer answer = Answer::charged;
};

/// An idempotency key in the service's store.
struct KeyEntry {
  bool done = false;  // false: a charge with this key is in progress
  Time expires = 0;   // when done: the entry is forgotten at this time
};

class PaymentService final : public System {
 public:
  PaymentService(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        timeout_(p.duration("timeout")),
        delay_(p.duration("network_delay")),
        max_attempts_(variant == Variant::no_retry ? 1 : p.integer<std::uint32_t>("max_attempts")),
        base_(p.duration("backoff_base")),
        cap_(p.duration("backoff_cap")),
        jitter_(p.real("jitter")),
        key_ttl_(p.duration("key_ttl")),
        // The lesson's stream is the same in every variant: so are the lost answers and sleeps.
        drop_salt_(ctx.rng().next()),
        jitter_salt_(ctx.rng().next()),
        charges_metric_(ctx.metric("charges")),
        double_metric_(ctx.metric("double_charges")),
        failed_metric_(ctx.metric("charged_but_failed")),
        absorbed_metric_(ctx.metric("duplicates_absorbed")),
        keys_metric_(ctx.metric("keys_stored")),
        service_(ctx,
                 {.workers = p.integer<int>("workers"),
                  .queue_limit = p.integer<std::size_t>("queue_limit")},
                 [this](SlotHandle& a) { charged(a); }) {
    if (base_ > cap_)
      throw std::invalid_argument("backoff_base (" + std::to_string(to_milliseconds(base_)) +
                                  " ms) must not exceed backoff_cap (" +
                                  std::to_string(to_milliseconds(cap_)) + " ms)");
    if (uses_keys()) store_.reserve(1 << 16);
  }

  void handle(const Request& r) override {
    const SlotHandle h = purchases_.acquire();
    purchases_[h] = Purchase{r};
    send(h);
  }

  void inject(const std::string& fault, const Value& p) override {
    const Time duration = p["duration"].as_int();
    if (fault == "drop_responses") {
      drop_share_ = p["share"].as_double();
      drop_until_ = ctx_.now() + duration;
    } else if (fault == "slow_service") {
      // A new slow_service replaces the one running.
      if (duration > 0) return service_.set_slow_for(p["factor"].as_double(), duration);
      service_.set_slow(1);  // 0 ends it
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "key") {
      const auto purchase = static_cast<std::uint64_t>(args["purchase"].as_int());
      expire_keys();
      const auto it = store_.find(purchase);
      if (it == store_.end()) return Map{{"state", "absent"}};
      if (!it->second.done) return Map{{"state", "in_progress"}};
      return Map{{"state", "done"}, {"expires_in", to_seconds(it->second.expires - ctx_.now())}};
    }
    Map stats = figures();  // "stats"
    stats["purchases_in_flight"] = static_cast<std::int64_t>(purchases_.in_use());
    stats["charging"] = service_.busy();
    stats["queued"] = static_cast<std::int64_t>(service_.queued());
    stats["lost_answers"] = lost_answers_;
    return stats;
  }

  Map figures() const override {
    return {{"attempts", attempts_},
            {"charges", charges_},
            {"double_charges", double_charges_},
            {"charged_but_failed", charged_but_failed_},
            {"duplicates_absorbed", duplicates_absorbed_},
            {"keys_stored", static_cast<std::int64_t>(store_.size())}};
  }

  /// From now on the figures count the purchases arriving from now on, as the runtime does
  /// (keys_stored is the store's size: state, not a count).
  void reset_stats() override {
    attempts_ = charges_ = double_charges_ = charged_but_failed_ = duplicates_absorbed_ =
        lost_answers_ = 0;
    counting_from_ = ctx_.now();
  }

 private:
  bool uses_keys() const {
    return variant_ == Variant::idempotency_key || variant_ == Variant::key_after_charge;
  }
  bool counted(const Purchase& p) const { return p.request.arrival >= counting_from_; }
  /// Add one to `figure` (and `metric`) if the purchase counts.
  void count(const Purchase& p, std::int64_t& figure, Metric* metric = nullptr) {
    if (!counted(p)) return;
    ++figure;
    if (metric != nullptr) metric->add(1);
  }

  // ---- client -------------------------------------------------------------------------------

  void send(SlotHandle h) {
    Purchase& p = purchases_[h];
    const SlotHandle a = attempts_pool_.acquire();
    attempts_pool_[a] = Attempt{h, ++p.attempts};
    ++p.outstanding;
    count(p, attempts_);
    ctx_.after(delay_, [this, a] { arrive(a); });
    p.timeout = ctx_.after(timeout_, [this, h] { on_timeout(h); });
  }

  /// No answer within the timeout (an answer would have cancelled it).
  void on_timeout(SlotHandle h) {
    purchases_[h].timeout = {};
    retry_or_give_up(h, Outcome::timeout);
    release_if_finished(h);
  }

  /// The answer to attempt `a` reaches the client.
  void on_answer(SlotHandle a) {
    const Attempt att = attempts_pool_[a];
    attempts_pool_.release(a);
    Purchase& p = purchases_[att.purchase];
    --p.outstanding;
    if (p.timeout && att.number == p.attempts) {  // the attempt awaited, in time
      ctx_.cancel(p.timeout);
      p.timeout = {};
      if (att.answer == Answer::charged)
        finish(att.purchase, Outcome::ok);
      else
        retry_or_give_up(att.purchase, Outcome::error);
    }
    release_if_finished(att.purchase);
  }

  void retry_or_give_up(SlotHandle h, Outcome outcome) {
    const Purchase& p = purchases_[h];
    if (p.attempts >= max_attempts_) return finish(h, outcome);
    ctx_.after(backoff(p), [this, h] { send(h); });
  }

  /// Sleep after the n-th failed attempt: t = min(cap, base * 2^(n-1)), of which the share
  /// `jitter` is random: t * (1 - jitter + jitter * uniform(0, 1)).
  Time backoff(const Purchase& p) const {
    const int doublings = static_cast<int>(std::min<std::uint32_t>(p.attempts, 63)) - 1;
    const double t =
        std::min(static_cast<double>(cap_), std::ldexp(static_cast<double>(base_), doublings));
    const double u = Rng::uniform_at(jitter_salt_, p.request.id, p.attempts);
    return round_time(t * (1 - jitter_ + jitter_ * u));
  }

  void finish(SlotHandle h, Outcome outcome) {
    Purchase& p = purchases_[h];
    p.done = true;
    // Attempts still on their way may yet be charged after the client gave up: the run must
    // not end before they are (Context::hold keeps the drain going).
    p.held = p.outstanding > 0;
    if (p.held) ctx_.hold();
    if (outcome != Outcome::ok && p.charges > 0) count(p, charged_but_failed_, &failed_metric_);
    ctx_.complete(p.request, outcome);
  }

  void release_if_finished(SlotHandle h) {
    const Purchase& p = purchases_[h];
    if (!p.done || p.outstanding > 0) return;
    if (p.held) ctx_.release();
    purchases_.release(h);
  }

  // ---- service ------------------------------------------------------------------------------

  /// Attempt `a` reaches the service.
  void arrive(SlotHandle a) {
    Attempt& att = attempts_pool_[a];
    const Purchase& p = purchases_[att.purchase];
    const std::uint64_t key = p.request.id;
    if (uses_keys()) {
      expire_keys();
      const auto it = store_.find(key);
      // A duplicate: never charged again while the key lives.
      if (it != store_.end() && (it->second.done || variant_ == Variant::idempotency_key)) {
        count(p, duplicates_absorbed_, &absorbed_metric_);
        att.answer = it->second.done ? Answer::charged : Answer::in_progress;
        return answer(a);
      }
    }
    if (service_.submit(a, p.request.service) == Admission::rejected) {
      att.answer = Answer::busy;  // 503: refused before charging; the key is not taken
      return answer(a);
    }
    if (variant_ == Variant::idempotency_key) {
      store_[key] = KeyEntry{false, 0};  // in progress, before charging
      keys_metric_.set(static_cast<double>(store_.size()));
    }
  }

  /// The charge of attempt `a` commits.
  void charged(SlotHandle a) {
    Purchase& p = purchases_[attempts_pool_[a].purchase];
    count(p, charges_, &charges_metric_);
    if (++p.charges > 1) {
      count(p, double_charges_, &double_metric_);
    } else if (p.done) {
      // The client gave up before this (first) charge committed. It cannot have succeeded:
      // success needs a committed charge.
      count(p, charged_but_failed_, &failed_metric_);
    }
    if (uses_keys()) {
      store_[p.request.id] = KeyEntry{true, ctx_.now() + key_ttl_};
      expiry_.push_back({ctx_.now() + key_ttl_, p.request.id});
      keys_metric_.set(static_cast<double>(store_.size()));
      if (!sweep_pending_) schedule_sweep();
    }
    attempts_pool_[a].answer = Answer::charged;
    answer(a);
  }

  /// The service sends the answer to attempt `a`; the network may lose it.
  void answer(SlotHandle a) {
    if (!lost(attempts_pool_[a])) {
      ctx_.after(delay_, [this, a] { on_answer(a); });
      return;
    }
    const SlotHandle h = attempts_pool_[a].purchase;
    attempts_pool_.release(a);
    Purchase& p = purchases_[h];
    count(p, lost_answers_);
    --p.outstanding;
    release_if_finished(h);
  }

  /// Whether the answer to `att` is lost: a hash of (purchase, attempt) below the drop share, so
  /// that every variant loses the same answers.
  bool lost(const Attempt& att) const {
    if (ctx_.now() >= drop_until_ || drop_share_ <= 0) return false;
    const Request& r = purchases_[att.purchase].request;
    return Rng::uniform_at(drop_salt_, r.id, att.number) < drop_share_;
  }

  /// Forget the keys whose time is up. Entries are written with the same TTL in time order, so
  /// the expiry queue is sorted: pop from the front. A key written again after it expired has a
  /// later entry in the queue and is not erased by the earlier one.
  void expire_keys() {
    const Time now = ctx_.now();
    bool erased = false;
    while (!expiry_.empty() && expiry_.front().first <= now) {
      const auto it = store_.find(expiry_.pop_front().second);
      if (it != store_.end() && it->second.done && it->second.expires <= now) {
        store_.erase(it);
        erased = true;
      }
    }
    if (erased) keys_metric_.set(static_cast<double>(store_.size()));
  }

  /// Wake up when the oldest key expires (at most one wake-up pending), so that keys_stored
  /// counts live keys even when no attempt arrives to trigger expire_keys().
  void schedule_sweep() {
    sweep_pending_ = true;
    ctx_.after(expiry_.front().first - ctx_.now(), [this] {
      sweep_pending_ = false;
      expire_keys();
      if (!expiry_.empty()) schedule_sweep();
    });
  }

  Variant variant_;
  Context& ctx_;
  Time timeout_, delay_;
  std::uint32_t max_attempts_;
  Time base_, cap_;
  double jitter_;
  Time key_ttl_;
  std::uint64_t drop_salt_, jitter_salt_;
  Metric& charges_metric_;
  Metric& double_metric_;
  Metric& failed_metric_;
  Metric& absorbed_metric_;
  Metric& keys_metric_;

  SlotPool<Purchase> purchases_;
  SlotPool<Attempt> attempts_pool_;
  Server<SlotHandle> service_;                         // charges (attempts) on `workers`
  std::unordered_map<std::uint64_t, KeyEntry> store_;  // key -> entry (lookups only, no iteration)
  Fifo<std::pair<Time, std::uint64_t>> expiry_;        // (expires, key), sorted by time
  bool sweep_pending_ = false;

  double drop_share_ = 0;
  Time drop_until_ = 0;
  Time counting_from_ = 0;

  std::int64_t attempts_ = 0, charges_ = 0, double_charges_ = 0, charged_but_failed_ = 0,
               duplicates_absorbed_ = 0, lost_answers_ = 0;
};

LessonInfo info() {
  return {
      "idempotency",
      "Idempotency keys: retry a payment on timeout without charging twice",
      "A client that times out does not know whether its charge went through: the answer may "
      "have been lost after the charge committed, or the service may still be charging. "
      "Giving up shows the user a failure for a purchase that was paid; retrying charges "
      "again every time only the answer was lost: double charges.",
      "The client sends an idempotency key, the same on every attempt of one purchase. The "
      "service records the key as in progress before charging and stores the outcome after: "
      "a duplicate of a completed charge gets the stored answer, a duplicate of a charge in "
      "progress gets 409 'retry later', neither is charged. Keys are kept for key_ttl: retries "
      "must come sooner.",
      {"Stripe API (Idempotency-Key header, keys kept 24 hours, 409 on concurrent requests)",
       "IETF draft-ietf-httpapi-idempotency-key-header",
       "Brandur Leach, \"Implementing Stripe-like Idempotency Keys in Postgres\"",
       "AWS APIs (ClientToken on EC2 RunInstances and others), AWS Lambda Powertools "
       "idempotency utility"},
      {{"no_retry", true, "give up on a timeout: charged but failed"},
       {"retry", true, "retry on a timeout without a key: every retry charges again"},
       {"key_after_charge", true,
        "key stored only once the charge is done: retries during a slow charge charge again"},
       {"idempotency_key", false,
        "key stored as in progress before charging; duplicates replayed or told to retry"}},
      {{"timeout", ParamType::duration, "1s", "client timeout per attempt", 1e-6, 3600},
       {"network_delay", ParamType::duration, "10ms", "one-way network delay", 0, 60},
       {"workers", ParamType::integer, 500, "charges the service runs at once", 1, 1e7},
       {"queue_limit", ParamType::integer, 100000,
        "attempts waiting for a worker before the service answers busy (503)", 0, 1e9},
       {"max_attempts", ParamType::integer, 4, "attempts per purchase (no_retry: always 1)", 1,
        1000},
       {"backoff_base", ParamType::duration, "200ms",
        "sleep after the first failed attempt; doubles after each failure", 0, 3600},
       {"backoff_cap", ParamType::duration, "5s", "longest sleep between attempts", 0, 86400},
       {"jitter", ParamType::real, 0.5,
        "random share of each sleep (0: none, 0.5: equal jitter, 1: full jitter)", 0, 1},
       {"key_ttl", ParamType::duration, "24h",
        "how long a completed key is kept (from the end of its charge)", 0, 1e8}},
      {{"drop_responses",
        "the network loses a share of the service's answers (after the charge committed)",
        {{"share", ParamType::real, 0.2, "share of answers lost", 0, 1},
         {"duration", ParamType::duration, "10s", "how long (0 ends an earlier one)", 0, 1e7}}},
       {"slow_service",
        "charges take `factor` times longer (a slow card network): timeouts while they commit",
        {{"factor", ParamType::real, 10.0, "service time multiplier", 1e-3, 1e6},
         {"duration", ParamType::duration, "10s", "how long (0 ends an earlier one)", 0, 1e7}}}},
      {{"stats",
        "the figures plus lost_answers, purchases_in_flight, charging and queued right now",
        {}},
       {"key",
        "state of a purchase's key in the store: absent, in_progress or done (expires_in s)",
        {{"purchase", ParamType::integer, Value(), "purchase (request) id", 0, 1e18}}}},
      {{"charges", MetricSpec::Kind::counter, "charges committed"},
       {"double_charges", MetricSpec::Kind::counter, "charges beyond the first of a purchase"},
       {"charged_but_failed", MetricSpec::Kind::counter,
        "purchases the user saw fail although they were charged"},
       {"duplicates_absorbed", MetricSpec::Kind::counter,
        "retries answered from the key store without charging"},
       {"keys_stored", MetricSpec::Kind::gauge, "idempotency keys in the store"}},
      {{"attempts", Unit::count, "attempts sent by the clients (first tries and retries)"},
       {"charges", Unit::count, "charges committed"},
       {"double_charges", Unit::count, "charges beyond the first of a purchase"},
       {"charged_but_failed", Unit::count,
        "purchases the user saw fail although they were charged"},
       {"duplicates_absorbed", Unit::count, "retries answered from the key store, not charged"},
       {"keys_stored", Unit::count, "idempotency keys in the store at the end"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"no_retry", Variant::no_retry},
      {"retry", Variant::retry},
      {"key_after_charge", Variant::key_after_charge},
      {"idempotency_key", Variant::idempotency_key}};
  return std::make_unique<PaymentService>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
