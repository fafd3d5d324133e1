// The dual-write problem: an order service must both store an order and publish an event about
// it, to a database and a broker that share no transaction.
//
//   problem:  write_then_publish -> COMMIT the order; publish(OrderPlaced)
//             a crash (or a broker outage) after the COMMIT and before the broker has the event:
//             the order exists, nobody downstream ever hears of it (lost event).
//             publish_then_write -> publish(OrderPlaced); COMMIT the order
//             a crash or a failed COMMIT after the publish: downstream acts on an order that
//             does not exist (phantom event).
//   fix:      transactional_outbox -> BEGIN; INSERT order; INSERT outbox row; COMMIT
//             a relay polls the outbox: SELECT unsent rows; publish each; UPDATE them as sent.
//             Order and event commit together or not at all. A relay crash between publishing
//             and the UPDATE publishes those rows again: at least once, consumers dedupe by id.
//             cdc -> COMMIT the order; a connector tails the database's log (WAL / binlog),
//             publishes each committed order and records its log position every offset_flush;
//             after a crash it resumes from the last recorded position: duplicates again, but
//             no dual write and no polling.
//
// Model: one order per request. Its transaction runs on the database (an SDK Server of
// db_workers, taking the request's service time) and commits at its end, unless db_errors says
// it fails (a hash of the order id: the same orders fail in every variant). A publish takes
// publish_time and is refused while the broker is down. Per order we keep whether it committed
// and how many events were published: the figures compare the two, exactly.
#include <algorithm>
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

enum class Variant { write_then_publish, publish_then_write, transactional_outbox, cdc };

/// What we know of one order, by request id: the ground truth the figures compare.
struct OrderRecord {
  Time arrival = -1;         // -1: no such order (yet)
  Time committed = -1;       // commit time; -1: not in the database
  std::uint32_t events = 0;  // events published about it
};

/// An order being handled by the order service.
enum class Step : std::uint8_t { transaction, publish };
struct Order {
  Request request;
  Step step = Step::transaction;
  EventId publish;       // the publish in flight
  bool aborted = false;  // the service crashed: its transaction rolls back when it ends
};

/// The background publisher: the outbox relay or the CDC connector.
struct Publisher {
  bool alive = true;
  bool busy = false;                      // a batch (relay) or a publish (connector) in progress
  EventId step;                           // its next step (a publish ending, the UPDATE, a wake-up)
  std::size_t batch = 0;                  // relay: rows of the current batch; connector: unused
  std::size_t done = 0;                   // relay: rows of the batch published so far
  std::size_t position = 0, flushed = 0;  // connector: next log entry, last recorded position
  bool holding = false;                   // it holds the drain while it has work
};

class Outbox final : public System {
 public:
  Outbox(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        publish_time_(p.duration("publish_time")),
        poll_interval_(p.duration("poll_interval")),
        batch_(p.integer<std::size_t>("batch")),
        mark_time_(p.duration("mark_time")),
        cdc_lag_(p.duration("cdc_lag")),
        offset_flush_(p.duration("offset_flush")),
        fail_salt_(ctx.salt("commit failures")),
        lost_metric_(ctx.metric("lost_events")),
        phantom_metric_(ctx.metric("phantom_events")),
        duplicate_metric_(ctx.metric("duplicate_events")),
        backlog_metric_(ctx.metric("backlog")),
        db_(ctx, {.workers = p.integer<int>("db_workers")},
            [this](SlotHandle& h) { transaction_done(h); }) {
    if (variant_ == Variant::transactional_outbox) ctx_.after(poll_interval_, [this] { poll(); });
    if (variant_ == Variant::cdc) ctx_.after(offset_flush_, [this] { flush_offset(); });
  }

  void handle(const Request& r) override {
    record(r.id).arrival = r.arrival;
    if (!service_up_) return ctx_.complete(r, Outcome::error);  // connection refused
    const SlotHandle h = orders_.acquire();
    orders_[h] = Order{};
    orders_[h].request = r;
    if (variant_ == Variant::publish_then_write) return start_publish(h);
    db_.submit(h, r.service);
  }

  void inject(const std::string& fault, const Value& p) override {
    const Time duration = p["duration"].as_int();
    if (fault == "crash_service") {
      crash_service();
      ctx_.after(duration, [this] { service_up_ = true; });
    } else if (fault == "db_errors") {
      ctx_.cancel(db_errors_end_);
      db_error_rate_ = p["rate"].as_double();
      db_errors_end_ = ctx_.after(duration, [this] { db_error_rate_ = 0; });
    } else if (fault == "broker_down") {
      ctx_.cancel(broker_back_);
      broker_up_ = false;
      broker_back_ = ctx_.after(duration, [this] { broker_up_ = true; });
    } else if (fault == "crash_relay") {  // declared for the two variants that have a relay
      crash_publisher();
      ctx_.after(duration, [this] { restart_publisher(); });
    }
  }

  Map figures() const override {
    std::int64_t committed = 0, with_event = 0, lost = 0, phantom = 0, duplicates = 0;
    for (const OrderRecord& o : records_) {
      if (o.arrival < counted_from_) continue;
      const bool in_db = o.committed >= 0;
      committed += in_db;
      with_event += o.events > 0;
      lost += in_db && o.events == 0;
      phantom += !in_db && o.events > 0;
      duplicates += o.events > 1 ? o.events - 1 : 0;
    }
    return {{"committed", committed},
            {"events", with_event},
            {"lost_events", lost},
            {"phantom_events", phantom},
            {"inconsistent", lost + phantom},
            {"duplicates", duplicates},
            {"event_delay_p50", to_seconds(event_delay_.quantile(0.5))},
            {"event_delay_p99", to_seconds(event_delay_.quantile(0.99))},
            {"backlog_peak", backlog_peak_}};
  }

  /// The figures count the orders arriving from now on; the outbox and the log stay.
  void reset_stats() override {
    counted_from_ = ctx_.now();
    event_delay_.reset();
    backlog_peak_ = static_cast<std::int64_t>(backlog());
  }

 private:
  OrderRecord& record(std::uint64_t id) {
    if (records_.size() <= id) records_.resize(id + 1);
    return records_[id];
  }

  // ---- the order service ----------------------------------------------------------------------

  void finish(SlotHandle h, Outcome outcome) {
    ctx_.complete(orders_[h].request, outcome);
    orders_.release(h);
  }

  /// The transaction ends: it commits (order, and the outbox row or the log entry with it),
  /// or fails, or rolls back because its service crashed meanwhile.
  void transaction_done(SlotHandle h) {
    Order& o = orders_[h];
    if (o.aborted) return orders_.release(h);  // its request already failed
    const std::uint64_t id = o.request.id;
    if (db_error_rate_ > 0 && Rng::uniform_at(fail_salt_, id, 0) < db_error_rate_) {
      if (variant_ == Variant::publish_then_write) phantom_metric_.add(1);
      return finish(h, Outcome::error);
    }
    record(id).committed = ctx_.now();
    switch (variant_) {
      case Variant::write_then_publish:
        return start_publish(h);
      case Variant::publish_then_write:
        return finish(h, Outcome::ok);
      case Variant::transactional_outbox:
        outbox_.push_back(id);  // in the same transaction as the order
        changed_backlog();
        return finish(h, Outcome::ok);
      case Variant::cdc:
        log_.push_back(id);
        changed_backlog();
        connector_next();
        return finish(h, Outcome::ok);
    }
  }

  void start_publish(SlotHandle h) {
    Order& o = orders_[h];
    o.step = Step::publish;
    if (!broker_up_) {  // connection refused
      if (variant_ == Variant::write_then_publish) lost_metric_.add(1);
      return finish(h, Outcome::error);
    }
    o.publish = ctx_.after(publish_time_, [this, h] {
      published(orders_[h].request.id);
      if (variant_ == Variant::write_then_publish) return finish(h, Outcome::ok);
      orders_[h].step = Step::transaction;  // publish_then_write: now the COMMIT
      db_.submit(h, orders_[h].request.service);
    });
  }

  /// The service dies: every order it is handling fails (connection reset). A transaction in
  /// progress rolls back when it ends; a publish in flight never reaches the broker.
  void crash_service() {
    if (!service_up_) return;
    service_up_ = false;
    orders_.for_each([&](SlotHandle h, Order& o) {
      if (o.aborted) return;
      ctx_.complete(o.request, Outcome::error);
      if (o.step == Step::transaction) {
        o.aborted = true;
        if (variant_ == Variant::publish_then_write) phantom_metric_.add(1);
        return;
      }
      ctx_.cancel(o.publish);
      if (variant_ == Variant::write_then_publish) lost_metric_.add(1);
      orders_.release(h);
    });
    ctx_.log("order service crashed");
  }

  // ---- events ---------------------------------------------------------------------------------

  void published(std::uint64_t id) {
    OrderRecord& o = record(id);
    if (++o.events == 1) {
      if (o.committed >= 0) event_delay_.record(ctx_.now() - o.committed);
    } else {
      duplicate_metric_.add(1);
    }
  }

  // ---- the outbox relay -----------------------------------------------------------------------

  /// Every poll_interval: take up to `batch` unsent rows, publish them one by one, then mark the
  /// published ones sent (one UPDATE, mark_time). A refused publish ends the batch early.
  void poll() {
    ctx_.after(poll_interval_, [this] { poll(); });
    if (!relay_.alive || relay_.busy || outbox_.empty()) return;
    relay_.busy = true;
    relay_.batch = std::min(batch_, outbox_.size());
    relay_.done = 0;
    relay_publish_next();
  }

  void relay_publish_next() {
    if (relay_.done == relay_.batch || !broker_up_) {
      if (relay_.done == 0) {
        relay_.busy = false;
        return;
      }
      relay_.step = ctx_.after(mark_time_, [this] { relay_marked(); });
      return;
    }
    relay_.step = ctx_.after(publish_time_, [this] {
      published(outbox_[relay_.done]);
      ++relay_.done;
      relay_publish_next();
    });
  }

  /// UPDATE outbox SET sent = true WHERE id IN (the published rows): they leave the outbox.
  void relay_marked() {
    for (std::size_t i = 0; i < relay_.done; ++i) outbox_.pop_front();
    relay_.busy = false;
    changed_backlog();
  }

  // ---- the CDC connector ----------------------------------------------------------------------

  /// Publish the next log entry once it is visible in the log stream (cdc_lag after its commit).
  void connector_next() {
    Publisher& c = relay_;
    if (!c.alive || c.busy || c.position >= log_.size()) return;
    const Time visible = record(log_[c.position]).committed + cdc_lag_;
    c.busy = true;
    if (!broker_up_) {  // retry after a poll interval
      c.step = ctx_.after(poll_interval_, [this] {
        relay_.busy = false;
        connector_next();
      });
      return;
    }
    c.step = ctx_.after(std::max<Time>(0, visible - ctx_.now()) + publish_time_, [this] {
      published(log_[relay_.position]);
      ++relay_.position;
      relay_.busy = false;
      changed_backlog();
      connector_next();
    });
  }

  /// Every offset_flush the connector records its log position (Kafka Connect's offset flush).
  void flush_offset() {
    ctx_.after(offset_flush_, [this] { flush_offset(); });
    if (relay_.alive) relay_.flushed = relay_.position;
  }

  // ---- both -----------------------------------------------------------------------------------

  void crash_publisher() {
    if (!relay_.alive) return;
    relay_.alive = false;
    ctx_.cancel(relay_.step);
    relay_.busy = false;
    relay_.position = relay_.flushed;  // where it will resume (CDC)
    changed_backlog();
    ctx_.log(variant_ == Variant::cdc ? "CDC connector crashed" : "outbox relay crashed");
  }

  void restart_publisher() {
    relay_.alive = true;
    if (variant_ == Variant::cdc) connector_next();
  }

  /// Events the publisher still has to publish: unsent outbox rows, or log entries after the
  /// connector's position.
  std::size_t backlog() const {
    if (variant_ == Variant::transactional_outbox) return outbox_.size();
    if (variant_ == Variant::cdc) return log_.size() - relay_.position;
    return 0;
  }

  void changed_backlog() {
    const std::size_t b = backlog();
    backlog_peak_ = std::max(backlog_peak_, static_cast<std::int64_t>(b));
    backlog_metric_.set(static_cast<double>(b));
    // The drain waits while the publisher has work (or a crashed one will have).
    const bool work = b > 0;
    if (work && !relay_.holding) ctx_.hold();
    if (!work && relay_.holding) ctx_.release();
    relay_.holding = work;
  }

  Variant variant_;
  Context& ctx_;
  Time publish_time_, poll_interval_;
  std::size_t batch_;
  Time mark_time_, cdc_lag_, offset_flush_;
  std::uint64_t fail_salt_;
  Metric& lost_metric_;
  Metric& phantom_metric_;
  Metric& duplicate_metric_;
  Metric& backlog_metric_;

  Server<SlotHandle> db_;
  SlotPool<Order> orders_;
  std::vector<OrderRecord> records_;  // by request id
  Fifo<std::uint64_t> outbox_;        // unsent outbox rows (order ids), in commit order
  std::vector<std::uint64_t> log_;    // the database's log of committed orders
  Publisher relay_;                   // the outbox relay or the CDC connector
  bool service_up_ = true, broker_up_ = true;
  double db_error_rate_ = 0;
  EventId db_errors_end_, broker_back_;
  Histogram event_delay_;  // commit -> first event
  std::int64_t backlog_peak_ = 0;
  Time counted_from_ = 0;
};

LessonInfo info() {
  return {
      "outbox",
      "The dual write: an order in the database and its event in the broker, kept in step",
      "A service writes an order to its database and publishes an OrderPlaced event to a "
      "broker: two systems, no shared transaction. A crash or a broker outage between the "
      "commit and the publish loses the event (the order exists, downstream never hears of "
      "it); publishing first and then failing the commit creates a phantom event (downstream "
      "ships an order that does not exist).",
      "Write the event into an outbox table in the same transaction as the order; a relay "
      "polls the table, publishes and marks the rows sent (transactional outbox). Or let a "
      "change-data-capture connector tail the database's log and publish every committed "
      "order (CDC). Order and event can no longer disagree; both publish at least once (a "
      "relay or connector crash republishes), so consumers deduplicate by event id.",
      {"Debezium (CDC from the PostgreSQL WAL / MySQL binlog) and its outbox event router",
       "Kafka Connect: source connectors and their offset flush (offset.flush.interval.ms)",
       "Transactional outbox / polling publisher (Chris Richardson, microservices.io; "
       "Microservices Patterns, 2018)",
       "AWS DynamoDB Streams + Lambda, MongoDB change streams",
       "Kafka transactions do not help here: the database is not part of them"},
      {{"write_then_publish", true, "COMMIT, then publish: a crash in between loses the event"},
       {"publish_then_write", true,
        "publish, then COMMIT: a failed commit or a crash leaves a phantom event"},
       {"transactional_outbox", false,
        "order + outbox row in one transaction; a polling relay publishes, then marks sent"},
       {"cdc", false, "a connector tails the database's log and publishes committed orders"}},
      {{"db_workers", ParamType::integer, 8, "transactions the database runs at once", 1, 1e6},
       {"publish_time", ParamType::duration, "1ms",
        "a publish: round trip to the broker, persisted and confirmed", 0, 60},
       {"poll_interval", ParamType::duration, "100ms",
        "outbox: the relay's polling period; cdc: the connector's retry after a refused "
        "publish",
        1e-6, 3600},
       {"batch", ParamType::integer, 100, "outbox: rows the relay takes per poll", 1, 1e6},
       {"mark_time", ParamType::duration, "2ms", "outbox: the relay's UPDATE marking a batch sent",
        0, 60},
       {"cdc_lag", ParamType::duration, "10ms",
        "cdc: time for a commit to appear in the log stream the connector reads", 0, 60},
       {"offset_flush", ParamType::duration, "1s",
        "cdc: how often the connector records its log position", 1e-6, 3600}},
      {{"crash_service",
        "the order service crashes, back after `duration`: orders in progress fail; a "
        "transaction in progress rolls back, a publish in flight never reaches the broker",
        {{"duration", ParamType::duration, "1s", "time until it is back", 0, 1e7}}},
       {"db_errors",
        "a share `rate` of commits fail (constraint, deadlock, failover) for `duration`",
        {{"rate", ParamType::real, 0.05, "probability that a commit fails", 0, 1},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"broker_down",
        "the broker refuses publishes for `duration`",
        {{"duration", ParamType::duration, "5s", "how long", 0, 1e7}}},
       {"crash_relay",
        "the outbox relay or the CDC connector crashes, back after `duration`",
        {{"duration", ParamType::duration, "1s", "time until it is back", 0, 1e7}},
        {"transactional_outbox", "cdc"}}},
      {},
      {{"lost_events", MetricSpec::Kind::counter,
        "committed orders whose event will never be published"},
       {"phantom_events", MetricSpec::Kind::counter, "events published for orders never committed"},
       {"duplicate_events", MetricSpec::Kind::counter, "events published again (at least once)"},
       {"backlog", MetricSpec::Kind::gauge,
        "events the relay or connector still has to publish (outbox rows, log entries)"}},
      {{"committed", Unit::count, "orders in the database"},
       {"events", Unit::count, "orders with at least one event published"},
       {"lost_events", Unit::count, "orders in the database without an event"},
       {"phantom_events", Unit::count, "orders with an event but not in the database"},
       {"inconsistent", Unit::count,
        "orders whose database state and event stream disagree (lost + phantom)"},
       {"duplicates", Unit::count, "events published beyond the first per order"},
       {"event_delay_p50", Unit::seconds, "median time from commit to the first event"},
       {"event_delay_p99", Unit::seconds, "99th percentile of commit -> first event"},
       {"backlog_peak", Unit::count, "most events waiting for the relay or connector at once"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"write_then_publish", Variant::write_then_publish},
      {"publish_then_write", Variant::publish_then_write},
      {"transactional_outbox", Variant::transactional_outbox},
      {"cdc", Variant::cdc}};
  return std::make_unique<Outbox>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
