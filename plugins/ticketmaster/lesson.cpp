// Ticket sale: a limited stock per event, a flood of buyers at the on-sale moment. Each purchase
// is handled by the app tier, which talks to the database over the network.
//
//   problem:  read_check_write  -> r = SELECT remaining
//                                  if r > 0: UPDATE SET remaining = r - 1; issue a ticket
//             every purchase whose SELECT runs before the UPDATE of an earlier one reads the
//             same r: each issues a ticket, the UPDATEs all write the same value (lost
//             decrements) -> oversold. With a race window W (SELECT to UPDATE) and arrivals
//             every 1/lambda, about ceil(lambda * W) tickets are issued per real decrement.
//   fix:      optimistic_locking -> (r, v) = SELECT remaining, version
//                                  if r == 0: sold out
//                                  UPDATE SET remaining = r - 1, version = v + 1 WHERE version = v
//                                  0 rows: somebody else won; back off, start again (max_retries)
//             never oversells; under contention most attempts conflict: retries, latency, and
//             purchases that give up while tickets remain (gave_up_with_stock).
//   fix:      atomic_decrement  -> UPDATE SET remaining = remaining - 1 WHERE remaining > 0
//             one statement the DB applies to the current value: 1 row = ticket, 0 = sold out.
//   fix:      pessimistic_lock  -> SELECT ... FOR UPDATE (row lock), then UPDATE + COMMIT (or
//             ROLLBACK when sold out): correct, but the lock is held across two round trips,
//             so one event sells at most one ticket per lock hold time; the rest queue.
//
// Model: event = request key % events, one row each (remaining, version). A statement crosses
// the network (db_delay each way), waits for one of db_workers in a FIFO queue and takes
// statement_time (the workload's service time is not used); it reads and writes the row when
// it ends. A SELECT ... FOR UPDATE waits for the row lock before it takes a worker.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/fifo.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant { read_check_write, optimistic_locking, atomic_decrement, pessimistic_lock };

/// The statement a purchase has in flight (one at a time).
enum class Stmt : std::uint8_t {
  select,             // SELECT remaining, version
  update_blind,       // UPDATE SET remaining = <read> - 1
  update_cas,         // UPDATE SET remaining = <read> - 1, version = v + 1 WHERE version = v
  decrement,          // UPDATE SET remaining = remaining - 1 WHERE remaining > 0
  select_for_update,  // SELECT remaining FOR UPDATE (takes the row lock)
  update_commit,      // UPDATE SET remaining = <read> - 1; COMMIT (releases the lock)
  rollback            // ROLLBACK (releases the lock)
};

/// One event's row, plus the bookkeeping the lesson needs to judge it.
struct Row {
  std::int64_t remaining = 0;
  std::uint64_t version = 0;
  std::int64_t stocked = 0;  // tickets put on sale (stock + restocks; since a warm-up)
  std::int64_t issued = 0;   // tickets issued to buyers (since a warm-up)
  SlotHandle lock_owner;     // the purchase holding the row lock (none: free)
  Fifo<SlotHandle> lock_waiters;
};

/// One purchase in the app tier.
struct Purchase {
  Request request;
  std::uint32_t row = 0;
  Stmt stmt = Stmt::select;
  std::int64_t seen_remaining = 0;
  std::uint64_t seen_version = 0;
  std::uint32_t conflicts = 0;
  bool affected = false;  // the last UPDATE changed a row
};

class TicketSale final : public System {
 public:
  TicketSale(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        delay_(p.duration("db_delay")),
        statement_time_(p.duration("statement_time")),
        max_retries_(p.integer<std::uint32_t>("max_retries")),
        backoff_(p.duration("backoff")),
        jitter_(p.real("jitter")),
        rows_(p.integer<std::size_t>("events")),
        sold_metric_(ctx.metric("tickets_sold")),
        oversold_metric_(ctx.metric("oversold")),
        retries_metric_(ctx.metric("retries")),
        db_(ctx, {.workers = p.integer<int>("db_workers")}, [this](SlotHandle& h) { execute(h); }) {
    const std::int64_t stock = p.integer("stock");
    for (Row& row : rows_) row.remaining = row.stocked = stock;
  }

  void handle(const Request& r) override {
    const SlotHandle h = purchases_.acquire();
    purchases_[h] = Purchase{r, static_cast<std::uint32_t>(r.key % rows_.size())};
    switch (variant_) {
      case Variant::read_check_write:
      case Variant::optimistic_locking:
        return send(h, Stmt::select);
      case Variant::atomic_decrement:
        return send(h, Stmt::decrement);
      case Variant::pessimistic_lock:
        return send(h, Stmt::select_for_update);
    }
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "slow_db") {
      const Time duration = p["duration"].as_int();
      // A new slow_db replaces the one running.
      if (duration > 0) return db_.set_slow_for(p["factor"].as_double(), duration);
      db_.set_slow(1);  // 0 ends it
    } else if (fault == "restock") {
      const std::int64_t count = p["count"].as_int();
      for (Row& row : rows_) {  // remaining = remaining + count, applied by the DB
        row.remaining += count;
        row.stocked += count;
        ++row.version;
      }
      oversold_ = 0;
      for (const Row& row : rows_) oversold_ += std::max<std::int64_t>(0, row.issued - row.stocked);
      oversold_metric_.set(static_cast<double>(oversold_));
    }
  }

  Value call(const std::string&, const Value&) override {
    Map stats = figures();  // "stats", the one operation
    std::int64_t remaining = 0, stocked = 0;
    for (const Row& row : rows_) {
      remaining += row.remaining;
      stocked += row.stocked;
    }
    stats["remaining"] = remaining;
    stats["stocked"] = stocked;
    stats["in_flight"] = static_cast<std::int64_t>(purchases_.in_use());
    return stats;
  }

  Map figures() const override {
    return {{"sold", sold_},
            {"oversold", oversold_},
            {"lost_decrements", lost_decrements_},
            {"retries", retries_},
            {"gave_up_with_stock", gave_up_with_stock_},
            {"db_statements", statements_}};
  }

  /// From now on the figures count the purchases arriving from now on, as the runtime does;
  /// `oversold` counts the tickets issued beyond those on sale from now on.
  void reset_stats() override {
    sold_ = oversold_ = lost_decrements_ = retries_ = gave_up_with_stock_ = statements_ = 0;
    for (Row& row : rows_) {
      row.stocked = row.remaining;
      row.issued = 0;
    }
    counting_from_ = ctx_.now();
  }

 private:
  bool counted(const Purchase& p) const { return p.request.arrival >= counting_from_; }

  // ---- app tier -----------------------------------------------------------------------------

  void send(SlotHandle h, Stmt stmt) {
    purchases_[h].stmt = stmt;
    if (counted(purchases_[h])) ++statements_;
    ctx_.after(delay_, [this, h] { arrive(h); });
  }

  /// The answer to the purchase's statement reaches the app.
  void on_reply(SlotHandle h) {
    Purchase& p = purchases_[h];
    switch (p.stmt) {
      case Stmt::select:
        if (p.seen_remaining <= 0) return finish(h, Outcome::rejected);
        return send(h,
                    variant_ == Variant::read_check_write ? Stmt::update_blind : Stmt::update_cas);
      case Stmt::select_for_update:
        return send(h, p.seen_remaining > 0 ? Stmt::update_commit : Stmt::rollback);
      case Stmt::update_blind:
      case Stmt::update_commit:
        return finish(h, Outcome::ok);
      case Stmt::rollback:
        return finish(h, Outcome::rejected);
      case Stmt::decrement:
        return finish(h, p.affected ? Outcome::ok : Outcome::rejected);
      case Stmt::update_cas:
        if (p.affected) return finish(h, Outcome::ok);
        if (p.conflicts > max_retries_) {  // out of retries: the buyer sees an error
          if (rows_[p.row].remaining > 0 && counted(p)) ++gave_up_with_stock_;
          return finish(h, Outcome::error);
        }
        if (counted(p)) {
          ++retries_;
          retries_metric_.add(1);
        }
        const double sleep = static_cast<double>(backoff_) * (1 + jitter_ * ctx_.rng().uniform());
        ctx_.after(round_time(sleep), [this, h] { send(h, Stmt::select); });
        return;
    }
  }

  void finish(SlotHandle h, Outcome outcome) {
    ctx_.complete(purchases_[h].request, outcome);
    purchases_.release(h);
  }

  // ---- database -----------------------------------------------------------------------------

  /// The purchase's statement reaches the DB.
  void arrive(SlotHandle h) {
    if (purchases_[h].stmt == Stmt::select_for_update) {
      Row& row = rows_[purchases_[h].row];
      if (row.lock_owner) return row.lock_waiters.push_back(h);
      row.lock_owner = h;
    }
    db_.submit(h, statement_time_);
  }

  /// The statement ends: it reads or writes the row now.
  void execute(SlotHandle h) {
    Purchase& p = purchases_[h];
    Row& row = rows_[p.row];
    switch (p.stmt) {
      case Stmt::select:
      case Stmt::select_for_update:
        p.seen_remaining = row.remaining;
        p.seen_version = row.version;
        break;
      case Stmt::update_blind:
        // Decrements written since our read are overwritten by this one.
        if (counted(p))
          lost_decrements_ += std::max<std::int64_t>(0, p.seen_remaining - row.remaining);
        write(p, row, p.seen_remaining - 1);
        break;
      case Stmt::update_cas:
        p.affected = row.version == p.seen_version;
        if (p.affected)
          write(p, row, p.seen_remaining - 1);
        else
          ++p.conflicts;
        break;
      case Stmt::decrement:
        p.affected = row.remaining > 0;
        if (p.affected) write(p, row, row.remaining - 1);
        break;
      case Stmt::update_commit:
        // Under the lock the row still holds what we read, unless a restock (which a real DB
        // would queue behind our lock) added tickets: decrement the current value.
        write(p, row, row.remaining - 1);
        unlock(row);
        break;
      case Stmt::rollback:
        unlock(row);
        break;
    }
    ctx_.after(delay_, [this, h] { on_reply(h); });
  }

  /// A committed UPDATE that issues one ticket to `p`.
  void write(const Purchase& p, Row& row, std::int64_t remaining) {
    row.remaining = remaining;
    ++row.version;
    ++row.issued;
    if (counted(p)) {
      ++sold_;
      sold_metric_.add(1);
    }
    if (row.issued > row.stocked) {
      ++oversold_;
      oversold_metric_.set(static_cast<double>(oversold_));
    }
  }

  /// Release the row lock; the first waiter takes it and its SELECT ... FOR UPDATE runs.
  void unlock(Row& row) {
    row.lock_owner = {};
    if (row.lock_waiters.empty()) return;
    row.lock_owner = row.lock_waiters.pop_front();
    db_.submit(row.lock_owner, statement_time_);
  }

  Variant variant_;
  Context& ctx_;
  Time delay_, statement_time_;
  std::uint32_t max_retries_;
  Time backoff_;
  double jitter_;
  std::vector<Row> rows_;
  Metric& sold_metric_;
  Metric& oversold_metric_;
  Metric& retries_metric_;

  SlotPool<Purchase> purchases_;
  Server<SlotHandle> db_;  // statements: db_workers at once, the others wait in FIFO order
  Time counting_from_ = 0;

  std::int64_t sold_ = 0, oversold_ = 0, lost_decrements_ = 0, retries_ = 0,
               gave_up_with_stock_ = 0, statements_ = 0;
};

LessonInfo info() {
  return {
      "ticketmaster",
      "Ticket sale: read-check-write oversells; version CAS or an atomic decrement does not",
      "A purchase reads the remaining tickets, checks there is one left, and writes back the "
      "value it read minus one. At the on-sale moment many purchases read the same value "
      "before any of them writes: each issues a ticket and their writes overwrite each other "
      "(lost updates). More tickets are sold than exist, roughly ceil(rate x race window) per "
      "real decrement.",
      "Make the check and the write one atomic step: an UPDATE ... WHERE version = v that "
      "fails (0 rows) when somebody else wrote first and is retried (optimistic locking), or "
      "a single UPDATE ... SET remaining = remaining - 1 WHERE remaining > 0 that the database "
      "applies to the current value (atomic decrement). A row lock (SELECT ... FOR UPDATE) "
      "is also correct but serializes the sale at one ticket per lock hold time.",
      {"Ticketmaster / SeatGeek: virtual waiting rooms in front of inventory, seat holds with "
       "expiry",
       "PostgreSQL: UPDATE ... WHERE ... and its row count; SELECT ... FOR UPDATE",
       "Optimistic concurrency control with version columns (JPA @Version, Rails "
       "lock_version, DynamoDB conditional writes)",
       "Redis DECR / a Lua script for inventory counters (flash sales)",
       "The lost update anomaly (Berenson et al. 1995, \"A Critique of ANSI SQL Isolation "
       "Levels\")"},
      {{"read_check_write", true,
        "SELECT remaining; if > 0: UPDATE SET remaining = read - 1: oversells"},
       {"optimistic_locking", false,
        "SELECT remaining, version; UPDATE ... WHERE version = v; retry on 0 rows"},
       {"atomic_decrement", false,
        "UPDATE SET remaining = remaining - 1 WHERE remaining > 0: one statement"},
       {"pessimistic_lock", false,
        "SELECT ... FOR UPDATE; UPDATE; COMMIT: correct, serialized per event"}},
      {{"stock", ParamType::integer, 1000, "tickets per event at the start", 0, 1e12},
       {"events", ParamType::integer, 1, "events (rows); a request buys for key % events", 1, 1e6},
       {"db_delay", ParamType::duration, "1ms", "one-way network delay app <-> DB", 0, 60},
       {"statement_time", ParamType::duration, "200us", "DB time per statement", 0, 60},
       {"db_workers", ParamType::integer, 64, "statements the DB runs at once", 1, 1e7},
       {"max_retries", ParamType::integer, 5,
        "optimistic_locking: retries after a conflict before giving up", 0, 1e6},
       {"backoff", ParamType::duration, "2ms", "optimistic_locking: sleep before a retry", 0, 60},
       {"jitter", ParamType::real, 1.0,
        "optimistic_locking: the sleep is backoff * (1 + jitter * uniform(0, 1))", 0, 100}},
      {{"slow_db",
        "statements take `factor` times longer (a vacuum, a noisy neighbour): a wider race "
        "window",
        {{"factor", ParamType::real, 5.0, "statement time multiplier", 1e-3, 1e6},
         {"duration", ParamType::duration, "10s", "how long (0 ends an earlier one)", 0, 1e7}}},
       {"restock",
        "put `count` more tickets on sale for every event (remaining += count in the DB)",
        {{"count", ParamType::integer, 100, "tickets added per event", 0, 1e12}}}},
      {{"stats", "the figures plus remaining, stocked and in_flight purchases right now", {}}},
      {{"tickets_sold", MetricSpec::Kind::counter, "tickets issued to buyers"},
       {"oversold", MetricSpec::Kind::gauge, "tickets issued beyond the stock"},
       {"retries", MetricSpec::Kind::counter, "optimistic_locking retries after a conflict"}},
      {{"sold", Unit::count, "tickets issued to buyers"},
       {"oversold", Unit::count, "tickets issued beyond those put on sale, per event"},
       {"lost_decrements", Unit::count, "decrements overwritten by a stale write"},
       {"retries", Unit::count, "optimistic_locking retries after a conflict"},
       {"gave_up_with_stock", Unit::count,
        "optimistic_locking buyers out of retries while tickets remained"},
       {"db_statements", Unit::count, "statements sent to the database"}},
      /*uses_service_time=*/false};  // statements take statement_time
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"read_check_write", Variant::read_check_write},
      {"optimistic_locking", Variant::optimistic_locking},
      {"atomic_decrement", Variant::atomic_decrement},
      {"pessimistic_lock", Variant::pessimistic_lock}};
  return std::make_unique<TicketSale>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
