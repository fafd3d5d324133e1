// Message queues: an order service and three downstream services (email, inventory, analytics).
//
//   problem:  sync_chain -> write the order; call email; call inventory; call analytics; answer
//             the user waits for the sum of the three calls, and the order fails when any one
//             of them fails: availability is the product of the three.
//   fix:      a queue  -> write the order; publish one event (fanned out to one queue per
//             service); answer. The user waits for the publish only; each service's consumers
//             drain their queue at their own pace, and a service that is down only lags.
//
//   delivery: at_most_once     consumer acks on delivery, then processes: a crash (or a failed
//                              attempt) loses the message.
//             at_least_once    processes, then acks: a crash redelivers every message whose ack
//                              the broker did not get; those already processed run twice.
//                              A failing message is retried in place, forever (a poison message
//                              pins its consumer); the queue is unbounded.
//             effectively_once at_least_once + a dedupe table (the consumer records each message
//                              id in the same transaction as its effect): redeliveries are no-ops.
//   poison:   dead_letter      at_least_once, but after max_attempts a message goes to the DLQ.
//   overload: bounded_backoff  a queue full at queue_limit refuses the publish; the producer
//                              backs off and retries, then fails the order (backpressure).
//             load_shedding    a full queue refuses the publish; the order is rejected at once.
//             autoscaling      consumers follow the backlog: ceil(backlog / target_backlog).
//
// Model: every order arriving is written by the order service (order_time). A downstream's work
// for one order is the request's service time, run by `consumers` workers (an SDK Server per
// service, no queue of its own: the broker's queue is ours, so a crash loses only what the
// consumers hold). Attempts fail for poison messages and with the service's error rate (a hash of
// (order, service, attempt): the same attempts fail in every variant).
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/fifo.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant {
  sync_chain,
  at_most_once,
  at_least_once,
  effectively_once,
  dead_letter,
  bounded_backoff,
  load_shedding,
  autoscaling
};

constexpr int kServices = 3;
const char* const kServiceNames[kServices] = {"email", "inventory", "analytics"};

int service_index(const std::string& name) {
  for (int s = 0; s < kServices; ++s)
    if (name == kServiceNames[s]) return s;
  throw std::invalid_argument("unknown service '" + name + "'");
}

/// One order in the order service, until the user has an answer.
struct Order {
  Request request;
  EventId timer;                // sync_chain: the call timeout; bounded_backoff: the next attempt
  std::uint32_t publishes = 0;  // bounded_backoff: publish attempts so far
  std::uint8_t poison = 0;      // bit s: the message for service s can never be processed
};

/// Where a message is. `queued`: in the broker's queue; the others: held by a consumer.
enum class Where : std::uint8_t { queued, processing, sleeping, acking };

/// One message for one service (sync_chain: one call).
struct Message {
  std::uint64_t order = 0;  // the order's request id: the message id
  Time work = 0;            // one attempt's work (the order's service time)
  Time published = 0;       // entered the queue
  SlotHandle caller;        // sync_chain: the order waiting for this call
  EventId timer;            // sleeping: the next attempt; acking: the ack reaching the broker
  std::uint32_t attempts = 0;
  std::uint8_t service = 0;
  Where where = Where::queued;
  bool poison = false;
  bool delivered = false;  // taken by a consumer at least once (its wait is recorded)
};

/// One downstream service: the broker's queue for it and its consumers.
struct Service {
  Fifo<SlotHandle> waiting;  // messages (sync_chain: calls) waiting for a consumer
  std::unique_ptr<Server<SlotHandle>> consumers;
  int sleeping = 0;  // consumers holding a message between two attempts
  int acking = 0;    // messages processed whose ack has not reached the broker yet
  int planned = 0;   // autoscaling: consumers running or starting
  double error_rate = 0;
  EventId errors_end;
  std::int64_t poison_left = 0;       // the next poison_left orders carry a poison message
  std::vector<std::uint8_t> applied;  // effects applied, per order id (the ground truth)
  std::vector<bool> dedupe;           // effectively_once: the consumer's table of ids done
  Metric* depth_metric = nullptr;
  Metric* lag_metric = nullptr;
  Metric* consumers_metric = nullptr;
};

class MessageQueue final : public System {
 public:
  MessageQueue(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        order_time_(p.duration("order_time")),
        publish_time_(p.duration("publish_time")),
        hop_(p.duration("hop")),
        call_timeout_(p.duration("call_timeout")),
        ack_delay_(p.duration("ack_delay")),
        retry_delay_(p.duration("retry_delay")),
        max_attempts_(p.integer<std::uint32_t>("max_attempts")),
        queue_limit_(p.integer<std::size_t>("queue_limit")),
        publish_attempts_(p.integer<std::uint32_t>("publish_attempts")),
        backoff_(p.duration("backoff")),
        message_bytes_(p.integer("message_bytes")),
        min_consumers_(p.integer<int>("consumers")),
        max_consumers_(p.integer<int>("max_consumers")),
        target_backlog_(p.integer("target_backlog")),
        scale_interval_(p.duration("scale_interval")),
        consumer_startup_(p.duration("consumer_startup")),
        errors_salt_(ctx.salt("attempt failures")),
        backoff_salt_(ctx.salt("producer backoff")),
        published_metric_(ctx.metric("messages_published")),
        processed_metric_(ctx.metric("messages_processed")),
        lost_metric_(ctx.metric("messages_lost")),
        duplicates_metric_(ctx.metric("duplicates")),
        redelivered_metric_(ctx.metric("redelivered")),
        dead_letter_metric_(ctx.metric("dead_lettered")) {
    if (variant_ == Variant::autoscaling && max_consumers_ < min_consumers_)
      throw std::invalid_argument("max_consumers must be at least consumers");
    for (int s = 0; s < kServices; ++s) {
      Service& svc = services_[s];
      // The broker's queue is `waiting`; the Server only runs attempts (queue_limit 0).
      svc.consumers = std::make_unique<Server<SlotHandle>>(
          ctx, Server<SlotHandle>::Options{.workers = min_consumers_, .queue_limit = 0},
          [this, s](SlotHandle& m) { attempt_done(s, m); });
      svc.planned = min_consumers_;
      svc.depth_metric = &ctx.metric("queue_depth", kServiceNames[s]);
      svc.lag_metric = &ctx.metric("consumer_lag_seconds", kServiceNames[s]);
      svc.consumers_metric = &ctx.metric("consumers", kServiceNames[s]);
      svc.consumers_metric->set(min_consumers_);
    }
    peak_consumers_ = min_consumers_;
    if (variant_ == Variant::autoscaling) ctx_.after(scale_interval_, [this] { autoscale(); });
  }

  void handle(const Request& r) override {
    const SlotHandle h = orders_.acquire();
    Order& o = orders_[h];
    o = Order{};
    o.request = r;
    for (int s = 0; s < kServices; ++s)
      if (services_[s].poison_left > 0) {
        --services_[s].poison_left;
        o.poison |= static_cast<std::uint8_t>(1u << s);
      }
    ctx_.after(order_time_, [this, h] {
      if (variant_ == Variant::sync_chain) return call(h, 0);
      ctx_.after(publish_time_, [this, h] { publish(h); });
    });
  }

  void inject(const std::string& fault, const Value& p) override {
    const int s = service_index(p["service"].as_string());
    Service& svc = services_[s];
    const Time duration = p["duration"].is_nil() ? 0 : p["duration"].as_int();
    if (fault == "crash_service") {
      crash(s);
      ctx_.after(duration, [this, s] {
        services_[s].consumers->restart();
        dispatch(s);
      });
    } else if (fault == "slow_service") {
      svc.consumers->set_slow_for(p["factor"].as_double(), duration);
    } else if (fault == "service_errors") {
      ctx_.cancel(svc.errors_end);
      svc.error_rate = p["rate"].as_double();
      svc.errors_end = ctx_.after(duration, [this, s] { services_[s].error_rate = 0; });
    } else if (fault == "poison") {
      svc.poison_left += p["count"].as_int();
    }
  }

  Value call(const std::string&, const Value&) override {
    Map out;  // "queues", the one operation
    for (int s = 0; s < kServices; ++s) {
      const Service& svc = services_[s];
      out[kServiceNames[s]] = Map{{"depth", static_cast<std::int64_t>(svc.waiting.size())},
                                  {"lag", lag_seconds(svc)},
                                  {"consumers", svc.consumers->workers()},
                                  {"alive", svc.consumers->alive()},
                                  {"held", held(s)}};
    }
    out["depth"] = static_cast<std::int64_t>(total_depth());
    return out;
  }

  Map figures() const override {
    Map f{{"peak_depth", peak_depth_},
          {"wait_mean", to_seconds(static_cast<Time>(waits_.mean()))},
          {"wait_p99", to_seconds(waits_.quantile(0.99))},
          {"wait_max", to_seconds(waits_.max())}};
    if (sync()) return f;  // calls waiting at the services: no messages, no broker
    std::int64_t stuck = 0;
    for (int s = 0; s < kServices; ++s)
      stuck += static_cast<std::int64_t>(services_[s].waiting.size()) + held(s);
    f.insert({{"published", published_},
              {"processed", processed_},
              {"lost", lost_},
              {"duplicates", duplicates_},
              {"redelivered", redelivered_},
              {"crash_in_flight", crash_in_flight_},
              {"dead_lettered", dead_lettered_},
              {"retries", retries_},
              {"stuck", stuck},
              {"peak_queue_bytes", peak_depth_ * message_bytes_},
              {"end_to_end_p99", to_seconds(end_to_end_.quantile(0.99))}});
    if (variant_ == Variant::effectively_once) f["dedupe_hits"] = dedupe_hits_;
    if (variant_ == Variant::bounded_backoff) f["publish_retries"] = publish_retries_;
    if (variant_ == Variant::autoscaling) {
      f["peak_consumers"] = peak_consumers_;
      f["consumer_seconds"] = consumer_seconds();
    }
    return f;
  }

  void reset_stats() override {
    published_ = processed_ = lost_ = duplicates_ = redelivered_ = crash_in_flight_ = 0;
    dead_lettered_ = retries_ = dedupe_hits_ = publish_retries_ = 0;
    peak_depth_ = static_cast<std::int64_t>(total_depth());
    waits_.reset();
    end_to_end_.reset();
    consumer_ns_ = 0;
    counted_since_ = ctx_.now();
    peak_consumers_ = 0;
    for (const Service& svc : services_)
      peak_consumers_ = std::max(peak_consumers_, static_cast<std::int64_t>(svc.planned));
  }

 private:
  bool sync() const { return variant_ == Variant::sync_chain; }
  bool acks_first() const { return variant_ == Variant::at_most_once; }
  bool bounded() const {
    return variant_ == Variant::bounded_backoff || variant_ == Variant::load_shedding;
  }

  // ---- the order service ----------------------------------------------------------------------

  void finish(SlotHandle h, Outcome outcome) {
    ctx_.cancel(orders_[h].timer);
    ctx_.complete(orders_[h].request, outcome);
    orders_.release(h);
  }

  /// sync_chain: call service `s` and wait for its answer (or the timeout).
  void call(SlotHandle h, int s) {
    Order& o = orders_[h];
    o.timer = ctx_.after(call_timeout_, [this, h] { finish(h, Outcome::timeout); });
    const SlotHandle m = new_message(o, s);
    messages_[m].caller = h;
    ctx_.after(hop_, [this, m] {
      const int s = messages_[m].service;
      messages_[m].published = ctx_.now();  // it waits in the service's queue from now on
      if (!services_[s].consumers->alive()) return answer_call(m, false);  // refused
      enqueue(s, m);
    });
  }

  /// The service's answer travels back to the order (which may have timed out).
  void answer_call(SlotHandle m, bool ok) {
    const SlotHandle caller = messages_[m].caller;
    const int s = messages_[m].service;
    messages_.release(m);
    ctx_.after(hop_, [this, caller, s, ok] {
      if (!orders_.live(caller)) return;  // it timed out: nobody listens
      ctx_.cancel(orders_[caller].timer);
      if (!ok) return finish(caller, Outcome::error);
      if (s + 1 < kServices) return call(caller, s + 1);
      finish(caller, Outcome::ok);
    });
  }

  /// The broker answers the publish: accepted into every queue, or refused (a queue is full).
  void publish(SlotHandle h) {
    Order& o = orders_[h];
    ++o.publishes;
    bool full = false;
    if (bounded())
      for (const Service& svc : services_) full = full || svc.waiting.size() >= queue_limit_;
    if (!full) {
      for (int s = 0; s < kServices; ++s) {
        ctx_.hold();  // the drain waits for the consumers
        enqueue(s, new_message(o, s));
      }
      return finish(h, Outcome::ok);
    }
    if (variant_ == Variant::load_shedding || o.publishes >= publish_attempts_)
      return finish(h, variant_ == Variant::load_shedding ? Outcome::rejected : Outcome::error);
    // Exponential backoff with jitter, the same sleeps in every system (a hash per attempt).
    ++publish_retries_;
    const double u = Rng::uniform_at(backoff_salt_, o.request.id, o.publishes);
    const double sleep =
        static_cast<double>(backoff_) * std::ldexp(1.0, static_cast<int>(o.publishes) - 1);
    o.timer =
        ctx_.after(round_time(sleep * (0.5 + 0.5 * u)) + publish_time_, [this, h] { publish(h); });
  }

  // ---- the broker and the consumers -----------------------------------------------------------

  SlotHandle new_message(const Order& o, int s) {
    const SlotHandle m = messages_.acquire();
    Message& msg = messages_[m];
    msg = Message{};
    msg.order = o.request.id;
    msg.work = o.request.service;
    msg.published = ctx_.now();
    msg.service = static_cast<std::uint8_t>(s);
    msg.poison = (o.poison >> s) & 1u;
    if (!sync()) {
      ++published_;
      published_metric_.add(1);
    }
    return m;
  }

  void enqueue(int s, SlotHandle m) {
    Service& svc = services_[s];
    messages_[m].where = Where::queued;
    svc.waiting.push_back(m);
    peak_depth_ = std::max(peak_depth_, static_cast<std::int64_t>(total_depth()));
    dispatch(s);
    update_gauges(svc);
  }

  /// Hand queued messages to free consumers. A consumer sleeping between two attempts keeps
  /// its message and its slot.
  void dispatch(int s) {
    Service& svc = services_[s];
    Server<SlotHandle>& c = *svc.consumers;
    while (c.alive() && c.busy() + svc.sleeping < c.workers() && !svc.waiting.empty())
      start_attempt(s, svc.waiting.pop_front());
    update_gauges(svc);
  }

  void start_attempt(int s, SlotHandle m) {
    Message& msg = messages_[m];
    if (!msg.delivered) {
      msg.delivered = true;
      waits_.record(ctx_.now() - msg.published);
    }
    msg.where = Where::processing;
    ++msg.attempts;
    services_[s].consumers->submit(m, msg.work);
  }

  bool attempt_fails(const Message& msg) const {
    if (msg.poison) return true;
    const double rate = services_[msg.service].error_rate;
    return rate > 0 &&
           Rng::uniform_at(errors_salt_, msg.order * kServices + msg.service, msg.attempts) < rate;
  }

  /// A consumer finished an attempt (the Server's completion).
  void attempt_done(int s, SlotHandle m) {
    Message& msg = messages_[m];
    const bool failed = attempt_fails(msg);
    if (sync()) {
      answer_call(m, !failed);
      return dispatch(s);
    }
    if (failed) {
      if (acks_first()) {  // acked on delivery: the broker no longer has it
        lose(m);
      } else if (variant_ == Variant::dead_letter && msg.attempts >= max_attempts_) {
        ++dead_lettered_;
        dead_letter_metric_.add(1);
        done(m);
      } else {  // retry in place: the consumer keeps the message (and its slot)
        ++retries_;
        msg.where = Where::sleeping;
        ++services_[s].sleeping;
        msg.timer = ctx_.after(retry_delay_, [this, m] { retry(m); });
      }
      return dispatch(s);
    }
    apply(msg);
    if (acks_first() || ack_delay_ == 0) {
      done(m);
    } else {
      msg.where = Where::acking;
      ++services_[s].acking;
      msg.timer = ctx_.after(ack_delay_, [this, m] {
        --services_[messages_[m].service].acking;
        done(m);
      });
    }
    dispatch(s);
  }

  void retry(SlotHandle m) {
    const int s = messages_[m].service;
    Service& svc = services_[s];
    --svc.sleeping;
    if (svc.consumers->busy() < svc.consumers->workers()) return start_attempt(s, m);
    enqueue(s, m);  // autoscaling removed its consumer meanwhile: back to the queue
  }

  /// The message's effect (an email sent, stock decremented, an event counted).
  void apply(const Message& msg) {
    Service& svc = services_[msg.service];
    if (svc.applied.size() <= msg.order) svc.applied.resize(msg.order + 1, 0);
    if (variant_ == Variant::effectively_once) {
      if (svc.dedupe.size() <= msg.order) svc.dedupe.resize(msg.order + 1, false);
      if (svc.dedupe[msg.order]) {
        ++dedupe_hits_;
        return;
      }
      svc.dedupe[msg.order] = true;  // in the same transaction as the effect
    }
    std::uint8_t& count = svc.applied[msg.order];
    if (count > 0) {
      ++duplicates_;
      duplicates_metric_.add(1);
    } else {
      ++processed_;
      processed_metric_.add(1);
      end_to_end_.record(ctx_.now() - msg.published);
    }
    if (count < 255) ++count;
  }

  /// The broker has the ack (or, at most once, the message is done with): it is gone.
  void done(SlotHandle m) {
    messages_.release(m);
    ctx_.release();
  }

  void lose(SlotHandle m) {
    ++lost_;
    lost_metric_.add(1);
    done(m);
  }

  /// The service's instances die. Every message they hold is lost (at most once: acked on
  /// delivery) or goes back to the queue (its ack never reached the broker). sync_chain: calls
  /// running or waiting fail (connections reset).
  void crash(int s) {
    Service& svc = services_[s];
    if (!svc.consumers->alive()) return;
    svc.consumers->kill([this](SlotHandle& m) { give_back(m); });
    svc.sleeping = svc.acking = 0;
    messages_.for_each([&](SlotHandle m, Message& msg) {
      if (msg.service != s || (msg.where != Where::sleeping && msg.where != Where::acking)) return;
      ctx_.cancel(msg.timer);
      give_back(m);
    });
    if (sync())
      while (!svc.waiting.empty()) answer_call(svc.waiting.pop_front(), false);
    ctx_.log(std::string(kServiceNames[s]) + " crashed");
    update_gauges(svc);
  }

  void give_back(SlotHandle m) {
    if (sync()) return answer_call(m, false);
    ++crash_in_flight_;
    if (acks_first()) return lose(m);
    ++redelivered_;
    redelivered_metric_.add(1);
    Message& msg = messages_[m];
    msg.where = Where::queued;
    services_[msg.service].waiting.push_back(m);
  }

  // ---- autoscaling ----------------------------------------------------------------------------

  /// KEDA-style: desired = ceil(backlog / target_backlog), within [consumers, max_consumers].
  /// New consumers start after consumer_startup; one is removed per interval when fewer would do.
  void autoscale() {
    for (int s = 0; s < kServices; ++s) {
      Service& svc = services_[s];
      Server<SlotHandle>& c = *svc.consumers;
      const std::int64_t backlog = static_cast<std::int64_t>(svc.waiting.size()) + held(s);
      const int desired = static_cast<int>(std::clamp<std::int64_t>(
          (backlog + target_backlog_ - 1) / target_backlog_, min_consumers_, max_consumers_));
      if (desired > svc.planned) {
        const int launch = desired - svc.planned;
        svc.planned = desired;
        ctx_.after(consumer_startup_, [this, s, launch] { resize(s, launch); });
      } else if (desired < svc.planned && svc.planned == c.workers()) {
        --svc.planned;
        resize(s, -1);
      }
      peak_consumers_ = std::max(peak_consumers_, static_cast<std::int64_t>(svc.planned));
    }
    ctx_.after(scale_interval_, [this] { autoscale(); });
  }

  void resize(int s, int delta) {
    account_consumers();
    Server<SlotHandle>& c = *services_[s].consumers;
    c.set_workers(c.workers() + delta);
    services_[s].consumers_metric->set(c.workers());
    dispatch(s);
  }

  void account_consumers() {
    int workers = 0;
    for (const Service& svc : services_) workers += svc.consumers->workers();
    consumer_ns_ += workers * (ctx_.now() - std::max(last_resize_, counted_since_));
    last_resize_ = ctx_.now();
  }

  double consumer_seconds() const {
    int workers = 0;
    for (const Service& svc : services_) workers += svc.consumers->workers();
    return to_seconds(consumer_ns_ +
                      workers * (ctx_.now() - std::max(last_resize_, counted_since_)));
  }

  // ---- bookkeeping ----------------------------------------------------------------------------

  /// Messages the service's consumers hold: processing, sleeping before a retry, acking.
  std::int64_t held(int s) const {
    const Service& svc = services_[s];
    return svc.consumers->busy() + svc.sleeping + svc.acking;
  }

  std::size_t total_depth() const {
    std::size_t depth = 0;
    for (const Service& svc : services_) depth += svc.waiting.size();
    return depth;
  }

  double lag_seconds(const Service& svc) const {
    if (svc.waiting.empty()) return 0.0;
    return to_seconds(ctx_.now() - messages_[svc.waiting.front()].published);
  }

  void update_gauges(Service& svc) {
    svc.depth_metric->set(static_cast<double>(svc.waiting.size()));
    svc.lag_metric->set(lag_seconds(svc));
  }

  Variant variant_;
  Context& ctx_;
  Time order_time_, publish_time_, hop_, call_timeout_, ack_delay_, retry_delay_;
  std::uint32_t max_attempts_;
  std::size_t queue_limit_;
  std::uint32_t publish_attempts_;
  Time backoff_;
  std::int64_t message_bytes_;
  int min_consumers_, max_consumers_;
  std::int64_t target_backlog_;
  Time scale_interval_, consumer_startup_;
  std::uint64_t errors_salt_, backoff_salt_;
  Metric& published_metric_;
  Metric& processed_metric_;
  Metric& lost_metric_;
  Metric& duplicates_metric_;
  Metric& redelivered_metric_;
  Metric& dead_letter_metric_;

  std::array<Service, kServices> services_;
  SlotPool<Order> orders_;
  SlotPool<Message> messages_;
  Histogram waits_;       // publish -> first taken by a consumer
  Histogram end_to_end_;  // publish -> effect first applied

  std::int64_t published_ = 0, processed_ = 0, lost_ = 0, duplicates_ = 0, redelivered_ = 0,
               crash_in_flight_ = 0, dead_lettered_ = 0, retries_ = 0, dedupe_hits_ = 0,
               publish_retries_ = 0, peak_depth_ = 0, peak_consumers_ = 0;
  Time consumer_ns_ = 0, last_resize_ = 0, counted_since_ = 0;
};

ParamSpec service_param(const char* default_service) {
  return {"service",
          ParamType::string,
          default_service,
          "the downstream service",
          -1e300,
          1e300,
          {kServiceNames[0], kServiceNames[1], kServiceNames[2]}};
}

LessonInfo info() {
  return {
      "message_queue",
      "Message queues: a synchronous call chain, then delivery guarantees, poison messages and "
      "backpressure",
      "An order service calls email, inventory and analytics one after the other: the user "
      "waits for the sum of the three calls, and the order fails when any of them fails "
      "(availability is the product). With a queue, how and when the consumer acknowledges "
      "decides what a crash does: ack first and the messages in flight are lost, ack last and "
      "they are processed twice. A message that can never be processed, retried forever, "
      "pins a consumer for good; enough of them stop the queue. An unbounded queue under "
      "overload grows without limit, in memory and in lag.",
      "Publish an event and answer: the user waits for the publish only, each service "
      "drains its queue at its own pace. Ack after processing and make the consumer "
      "idempotent (a dedupe table written with the effect): effectively once. Give up after "
      "max_attempts and park the message in a dead-letter queue. Bound the queue and push "
      "back on the producer (backoff, then fail) or shed load, or add consumers when the "
      "backlog grows.",
      {"RabbitMQ: manual acks and prefetch, quorum queues' delivery-limit (default 20 since "
       "4.0) with a dead-letter exchange, x-max-length with overflow=reject-publish",
       "Amazon SQS: visibility timeout, redrive policy (maxReceiveCount) to a dead-letter "
       "queue, ApproximateAgeOfOldestMessage",
       "KEDA: scaling consumers on queue length (RabbitMQ, SQS and Kafka scalers)",
       "The inbox / idempotent consumer pattern (a processed-message table)",
       "Erlang's formula C (A. K. Erlang, 1917) for the mean wait of an M/M/c queue"},
      {{"sync_chain", true, "call email, inventory, analytics in turn; the user waits for all"},
       {"at_most_once", true, "queue; the consumer acks on delivery: a crash loses messages"},
       {"at_least_once", true,
        "queue; ack after processing: crashes duplicate, failures are retried in place forever, "
        "the queue is unbounded"},
       {"effectively_once", false, "at_least_once + a dedupe table: redeliveries are no-ops"},
       {"dead_letter", false, "at_least_once, but after max_attempts a message goes to the DLQ"},
       {"bounded_backoff", false,
        "at_least_once with queues bounded at queue_limit: the producer backs off, then fails"},
       {"load_shedding", false,
        "at_least_once with queues bounded at queue_limit: a full queue rejects the order"},
       {"autoscaling", false, "at_least_once with consumers following the backlog (KEDA-style)"}},
      {{"consumers", ParamType::integer, 4,
        "instances (consumers) per service; the minimum for autoscaling", 1, 10000},
       {"order_time", ParamType::duration, "2ms", "the order service writes the order", 0, 60},
       {"publish_time", ParamType::duration, "1ms",
        "publish round trip to the broker (persisted and confirmed)", 0, 60},
       {"hop", ParamType::duration, "1ms", "sync_chain: one-way network delay to a service", 0, 60},
       {"call_timeout", ParamType::duration, "1s", "sync_chain: the order gives up on a call", 1e-6,
        3600},
       {"ack_delay", ParamType::duration, "1ms",
        "time for a consumer's ack to reach the broker (lost if the consumer crashes first)", 0,
        60},
       {"retry_delay", ParamType::duration, "100ms",
        "a consumer's pause before it retries a failed message", 0, 3600},
       {"max_attempts", ParamType::integer, 5, "dead_letter: attempts before the DLQ", 1, 1e6},
       {"queue_limit", ParamType::integer, 1000,
        "bounded_backoff, load_shedding: messages a queue holds", 1, 1e9},
       {"publish_attempts", ParamType::integer, 5,
        "bounded_backoff: publish attempts before the order fails", 1, 1000},
       {"backoff", ParamType::duration, "100ms",
        "bounded_backoff: sleep before the n-th retry: backoff * 2^(n-1) * uniform(0.5, 1)", 0,
        3600},
       {"message_bytes", ParamType::integer, 1024, "size of a message in the broker", 1, 1e9},
       {"max_consumers", ParamType::integer, 32, "autoscaling: most consumers per service", 1,
        10000},
       {"target_backlog", ParamType::integer, 10,
        "autoscaling: messages (queued or held) per consumer it aims at", 1, 1e9},
       {"scale_interval", ParamType::duration, "5s", "autoscaling: time between decisions", 1e-3,
        3600},
       {"consumer_startup", ParamType::duration, "10s",
        "autoscaling: time for a new consumer to start", 0, 3600}},
      {{"crash_service",
        "the service's instances crash, and restart after `duration`: messages they hold are "
        "lost (at most once) or redelivered; sync calls to it fail",
        {service_param("email"),
         {"duration", ParamType::duration, "5s", "time until the restart", 0, 1e7}}},
       {"slow_service",
        "the service's attempts take `factor` times longer for `duration`",
        {service_param("analytics"),
         {"factor", ParamType::real, 10.0, "work multiplier", 1e-3, 1e6},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"service_errors",
        "a share `rate` of the service's attempts fail (transient errors) for `duration`",
        {service_param("inventory"),
         {"rate", ParamType::real, 0.05, "probability that an attempt fails", 0, 1},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"poison",
        "the next `count` orders carry a message the service can never process (malformed)",
        {service_param("inventory"),
         {"count", ParamType::integer, 4, "orders with a poison message", 1, 1e9}}}},
      {{"queues",
        "per service: depth, lag (age of the oldest message, s), consumers, alive, "
        "held (messages its consumers hold); and the total depth",
        {}}},
      {{"messages_published", MetricSpec::Kind::counter, "messages accepted by the broker"},
       {"messages_processed", MetricSpec::Kind::counter, "messages whose effect was applied"},
       {"messages_lost", MetricSpec::Kind::counter, "messages that will never be processed"},
       {"duplicates", MetricSpec::Kind::counter, "effects applied a second time"},
       {"redelivered", MetricSpec::Kind::counter, "messages returned to a queue by a crash"},
       {"dead_lettered", MetricSpec::Kind::counter, "messages moved to the dead-letter queue"},
       {"queue_depth",
        MetricSpec::Kind::gauge,
        "messages waiting in the service's queue",
        "service",
        {kServiceNames[0], kServiceNames[1], kServiceNames[2]}},
       {"consumer_lag_seconds",
        MetricSpec::Kind::gauge,
        "age of the oldest message waiting in the service's queue",
        "service",
        {kServiceNames[0], kServiceNames[1], kServiceNames[2]}},
       {"consumers",
        MetricSpec::Kind::gauge,
        "consumers (instances) of the service",
        "service",
        {kServiceNames[0], kServiceNames[1], kServiceNames[2]}}},
      {{"published", Unit::count, "messages accepted by the broker (3 per order)"},
       {"processed", Unit::count, "messages whose effect was applied (once or more)"},
       {"lost", Unit::count, "messages whose effect will never be applied"},
       {"duplicates", Unit::count, "effects applied beyond the first"},
       {"redelivered", Unit::count, "messages returned to a queue by a crash"},
       {"crash_in_flight", Unit::count,
        "messages held by consumers (processing, between attempts, acking) when they crashed"},
       {"dead_lettered", Unit::count, "messages in the dead-letter queue"},
       {"retries", Unit::count, "failed attempts retried by the consumer"},
       {"stuck", Unit::count, "messages still queued or held at the end"},
       {"peak_depth", Unit::count,
        "most messages (sync_chain: calls) waiting in the queues at once"},
       {"peak_queue_bytes", Unit::bytes, "peak_depth x message_bytes"},
       {"wait_mean", Unit::seconds,
        "mean time from publish to a consumer taking the message (sync_chain: a call waiting "
        "for a worker)"},
       {"wait_p99", Unit::seconds, "99th percentile of that wait"},
       {"wait_max", Unit::seconds, "longest wait (the consumer lag at its worst)"},
       {"end_to_end_p99", Unit::seconds, "99th percentile of publish -> effect applied"},
       {"dedupe_hits", Unit::count, "effectively_once: redeliveries the dedupe table skipped"},
       {"publish_retries", Unit::count, "bounded_backoff: publishes retried after a full queue"},
       {"peak_consumers", Unit::count, "autoscaling: most consumers of one service"},
       {"consumer_seconds", Unit::number, "autoscaling: consumer-seconds paid for, all services"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"sync_chain", Variant::sync_chain},       {"at_most_once", Variant::at_most_once},
      {"at_least_once", Variant::at_least_once}, {"effectively_once", Variant::effectively_once},
      {"dead_letter", Variant::dead_letter},     {"bounded_backoff", Variant::bounded_backoff},
      {"load_shedding", Variant::load_shedding}, {"autoscaling", Variant::autoscaling}};
  return std::make_unique<MessageQueue>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
