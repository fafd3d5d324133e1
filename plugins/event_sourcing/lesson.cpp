// Event sourcing and CQRS: bank accounts kept as mutable rows, or as streams of events.
//
//   problem:  mutable_rows -> deposit: SELECT balance, version; UPDATE SET balance = read + x
//               two deposits that read the same row: the second UPDATE overwrites the first
//               (lost update); and the row only knows its present value: "the balance as of
//               t" is answered with today's balance (no history, no audit).
//   fix:      event_log -> deposit: load the account's stream (replay every event:
//               balance = sum of deposits), append Deposited(x) with expected version = the
//               version loaded; the log refuses it if another event was appended meanwhile:
//               reload and retry (optimistic concurrency). Nothing is overwritten, and the
//               balance as of t is the replay of the events committed by t.
//   problem:  reads go to a read model that a projector builds from the log, asynchronously:
//               right after a deposit the owner may read a balance without it (stale read).
//   fix:      read_your_writes -> the deposit returns the stream version; the owner's read
//               carries it and waits until the read model has applied that version.
//   problem:  loading an aggregate replays its whole stream: O(events), growing for ever.
//   fix:      snapshots -> every K events the append also stores a snapshot (version,
//               balance); a load reads the last snapshot and the events after it: O(K).
//
// Model: account = request key % accounts, used by its owner. A write is a deposit (amount
// drawn from the request id, the same in every variant); a read is a balance query, or, for
// audit_share of them, an audit: the balance as of a time up to audit_horizon ago. Every
// statement crosses the network (db_delay each way) and runs on the database (a Server of
// db_workers) for statement_time, plus event_read_time per row of a stream it reads (events
// and the snapshot). A stream is read as of the statement's arrival at the database. The
// projector polls the log every poll_interval and applies the new events one at a time
// (apply_time each) to the read model. The workload's service time is not used.
#include <algorithm>
#include <cstdint>
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

enum class Variant { mutable_rows, event_log, read_your_writes, snapshots };

/// Storage cost model: an event row, a snapshot row, a mutable row (bytes).
constexpr std::int64_t kEventBytes = 64;     // stream id, version, type, amount, time
constexpr std::int64_t kSnapshotBytes = 48;  // stream id, version, state, time
constexpr std::int64_t kRowBytes = 32;       // account id, balance, version

struct Event {
  std::int64_t amount = 0;
  Time committed = 0;
};
struct Snapshot {
  std::int64_t version = 0;  // events folded into it
  std::int64_t balance = 0;
  Time committed = 0;
};

struct Account {
  std::vector<Event> events;        // the stream; event i has version i + 1
  std::vector<Snapshot> snapshots;  // every K events (snapshots variant)
  std::int64_t row_balance = 0;     // mutable_rows
  std::int64_t row_reflected = 0;   // deposits the row's balance includes (lesson bookkeeping)
  std::int64_t projected_version = 0, projected_balance = 0;  // the read model
  std::int64_t acked_version = 0;  // the owner's last acknowledged deposit
  Fifo<SlotHandle> waiting_reads;  // read_your_writes: reads waiting for the read model
  // Ground truth: the balance after each committed deposit, with its commit time.
  std::vector<std::pair<Time, std::int64_t>> ledger;
};

/// What a stream load (or a row select) read: the state at `version` and the work it took.
struct Loaded {
  std::int64_t version = 0, balance = 0;  // rows: version = deposits the balance includes
  std::int64_t replayed = 0;              // events applied after the snapshot
  std::int64_t rows = 0;                  // rows read: events + the snapshot
};

enum class Stmt : std::uint8_t {
  select_row,   // mutable_rows: SELECT balance, version
  update_row,   // mutable_rows: UPDATE SET balance = read + amount
  load_stream,  // event logs: read the stream (from the last snapshot)
  append,       // event logs: append with expected version
  query_model,  // event logs: SELECT from the read model
  audit_row,    // mutable_rows: SELECT balance (all it has for "as of")
  audit_stream  // event logs: replay the events committed by `as_of`
};

/// A request in flight: a deposit or a read, one statement at a time.
struct Command {
  Request request;
  std::uint32_t account = 0;
  Stmt stmt = Stmt::select_row;
  std::int64_t amount = 0;
  Time as_of = 0;           // audits
  std::int64_t token = 0;   // reads: the owner's acknowledged version when asked
  Loaded loaded;            // what the last load or select read
  std::int64_t answer = 0;  // what a read answered
  std::uint32_t conflicts = 0;
  bool conflicted = false;  // the last append was refused
  Time waiting_since = 0;   // read_your_writes: parked since
};

/// An event for the projector.
struct Published {
  std::uint32_t account = 0;
  std::int64_t version = 0;
};

class EventSourcing final : public System {
 public:
  EventSourcing(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        accounts_(p.integer<std::size_t>("accounts")),
        db_delay_(p.duration("db_delay")),
        statement_time_(p.duration("statement_time")),
        event_read_time_(p.duration("event_read_time")),
        snapshot_every_(variant == Variant::snapshots ? p.integer("snapshot_every") : 0),
        max_retries_(p.integer<std::uint32_t>("max_retries")),
        poll_interval_(p.duration("poll_interval")),
        apply_time_(p.duration("apply_time")),
        audit_share_(p.real("audit_share")),
        audit_horizon_(p.duration("audit_horizon")),
        draw_salt_(ctx.salt("deposit amounts and audits")),
        events_metric_(ctx.metric("events")),
        conflicts_metric_(ctx.metric("conflicts")),
        lost_metric_(ctx.metric("lost_updates")),
        stale_metric_(ctx.metric("stale_reads")),
        replayed_metric_(ctx.metric("replayed_events")),
        backlog_metric_(ctx.metric("projection_backlog")),
        lag_metric_(ctx.metric("projection_lag_seconds")),
        db_(ctx, {.workers = p.integer<int>("db_workers")}, [this](SlotHandle& h) { execute(h); }),
        projector_(ctx, {.workers = 1}, [this](Published& e) { project(e); }) {}

  void handle(const Request& r) override {
    Rng draw(Rng::hash(r.id ^ draw_salt_));  // the same amounts and audits in every variant
    const SlotHandle h = commands_.acquire();
    Command& c = commands_[h];
    c = Command{};
    c.request = r;
    c.account = static_cast<std::uint32_t>(r.key % accounts_.size());
    c.amount = 1 + static_cast<std::int64_t>(draw.below(100));
    const bool audit = draw.chance(audit_share_);
    c.as_of = ctx_.now() - round_time(draw.uniform() * static_cast<double>(audit_horizon_));
    if (r.op == Op::write) return send(h, rows() ? Stmt::select_row : Stmt::load_stream);
    if (audit) {
      if (counted(c)) ++audits_;
      return send(h, rows() ? Stmt::audit_row : Stmt::audit_stream);
    }
    if (rows()) return send(h, Stmt::select_row);
    Account& a = accounts_[c.account];
    c.token = a.acked_version;
    if (variant_ != Variant::event_log && a.projected_version < c.token) {
      // read_your_writes: wait until the read model has the owner's last deposit.
      c.waiting_since = ctx_.now();
      if (counted(c)) ++read_waits_;
      a.waiting_reads.push_back(h);
      return;
    }
    send(h, Stmt::query_model);
  }

  Value call(const std::string& op, const Value& args) override {
    const auto index = static_cast<std::size_t>(args["account"].as_int());
    if (index >= accounts_.size()) throw std::invalid_argument("account must be below accounts");
    const Account& a = accounts_[index];
    if (op == "rebuild") {
      // Rebuild the account's state as a command would now: the formula's inputs and result.
      if (rows())
        return Map{{"events", 0},
                   {"replayed", 0},
                   {"rows", 1},
                   {"balance", a.row_balance},
                   {"cost", to_seconds(statement_time_)}};
      const Loaded l = load(a, static_cast<std::int64_t>(a.events.size()));
      return Map{{"events", static_cast<std::int64_t>(a.events.size())},
                 {"replayed", l.replayed},
                 {"rows", l.rows},
                 {"balance", l.balance},
                 {"cost", to_seconds(load_work(l))}};
    }
    if (op == "as_of") {
      // An audit answered now, without its statements: what the system says and the truth.
      const Time t = args["time"].as_int();
      const Loaded l = rows() ? Loaded{0, a.row_balance, 0, 1} : load_as_of(a, t);
      return Map{
          {"balance", l.balance}, {"true_balance", true_balance(a, t)}, {"replayed", l.replayed}};
    }
    // "account": what each side knows about it.
    return Map{{"events", static_cast<std::int64_t>(a.events.size())},
               {"snapshots", static_cast<std::int64_t>(a.snapshots.size())},
               {"balance", rows() ? a.row_balance : fold(a, 0, 0, a.events.size())},
               {"true_balance", a.ledger.empty() ? 0 : a.ledger.back().second},
               {"read_model_version", a.projected_version},
               {"read_model_balance", a.projected_balance},
               {"acked_version", a.acked_version}};
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "slow_db")
      return db_.set_slow_for(p["factor"].as_double(), p["duration"].as_int());
    // stall_projection: the projector stops (a redeploy, a poison event) for `duration`.
    projector_.set_workers(0);
    ctx_.hold();
    ctx_.after(p["duration"].as_int(), [this] {
      projector_.set_workers(1);
      ctx_.release();
    });
  }

  Map figures() const override {
    std::int64_t events = 0, snapshots = 0, longest = 0;
    for (const Account& a : accounts_) {
      events += static_cast<std::int64_t>(a.events.size());
      snapshots += static_cast<std::int64_t>(a.snapshots.size());
      longest = std::max(longest, static_cast<std::int64_t>(a.events.size()));
    }
    const std::int64_t bytes = rows() ? static_cast<std::int64_t>(accounts_.size()) * kRowBytes
                                      : events * kEventBytes + snapshots * kSnapshotBytes;
    return {{"lost_updates", lost_updates_},
            {"conflicts", conflicts_},
            {"audits", audits_},
            {"audit_wrong", audit_wrong_},
            {"stale_reads", stale_reads_},
            {"read_waits", read_waits_},
            {"read_wait_p99", to_seconds(read_wait_.quantile(0.99))},
            {"replayed_mean", replayed_.mean()},
            {"replayed_max", replayed_.max()},
            {"stream_max", longest},
            {"snapshots", snapshots},
            {"projection_lag_p99", to_seconds(projection_lag_.quantile(0.99))},
            {"storage_bytes", bytes}};
  }

  void reset_stats() override {
    lost_updates_ = conflicts_ = audits_ = audit_wrong_ = stale_reads_ = read_waits_ = 0;
    read_wait_.reset();
    replayed_.reset();
    projection_lag_.reset();
    counting_from_ = ctx_.now();
  }

 private:
  bool rows() const { return variant_ == Variant::mutable_rows; }
  bool counted(const Command& c) const { return c.request.arrival >= counting_from_; }

  // ---- the stream: real folds over real events -----------------------------------------

  /// Balance after folding events [from, to) onto `balance`.
  static std::int64_t fold(const Account& a, std::int64_t balance, std::size_t from,
                           std::size_t to) {
    for (std::size_t i = from; i < to; ++i) balance += a.events[i].amount;
    return balance;
  }
  /// The state at `version`: from the last snapshot at or below it, then its events.
  Loaded load(const Account& a, std::int64_t version) const {
    auto it = std::upper_bound(a.snapshots.begin(), a.snapshots.end(), version,
                               [](std::int64_t v, const Snapshot& s) { return v < s.version; });
    Loaded l;
    l.version = version;
    std::int64_t from = 0;
    if (it != a.snapshots.begin()) {
      --it;
      from = it->version;
      l.balance = it->balance;
      l.rows = 1;
    }
    l.balance =
        fold(a, l.balance, static_cast<std::size_t>(from), static_cast<std::size_t>(version));
    l.replayed = version - from;
    l.rows += l.replayed;
    return l;
  }
  /// The state as of time t: the events committed by t, from the last snapshot taken by then.
  Loaded load_as_of(const Account& a, Time t) const {
    auto end = std::upper_bound(a.events.begin(), a.events.end(), t,
                                [](Time when, const Event& e) { return when < e.committed; });
    return load(a, end - a.events.begin());
  }
  Time load_work(const Loaded& l) const { return statement_time_ + l.rows * event_read_time_; }
  /// The true balance as of t: what the deposits committed by then add up to.
  static std::int64_t true_balance(const Account& a, Time t) {
    auto it = std::upper_bound(a.ledger.begin(), a.ledger.end(), t,
                               [](Time when, const auto& entry) { return when < entry.first; });
    return it == a.ledger.begin() ? 0 : (it - 1)->second;
  }

  // ---- the application --------------------------------------------------------------------

  void send(SlotHandle h, Stmt stmt) {
    commands_[h].stmt = stmt;
    ctx_.after(db_delay_, [this, h] { at_database(h); });
  }

  /// The answer of the command's statement reaches the application.
  void on_reply(SlotHandle h) {
    Command& c = commands_[h];
    switch (c.stmt) {
      case Stmt::select_row:
        if (c.request.op == Op::write) return send(h, Stmt::update_row);
        return finish(h, Outcome::ok);
      case Stmt::load_stream:
        return send(h, Stmt::append);
      case Stmt::append:
        if (!c.conflicted) {
          Account& a = accounts_[c.account];
          a.acked_version = std::max(a.acked_version, c.loaded.version + 1);
          return finish(h, Outcome::ok);
        }
        if (c.conflicts > max_retries_) return finish(h, Outcome::error);
        return send(h, Stmt::load_stream);  // somebody appended first: reload, decide again
      case Stmt::update_row:
      case Stmt::query_model:
      case Stmt::audit_row:
      case Stmt::audit_stream:
        return finish(h, Outcome::ok);
    }
  }

  void finish(SlotHandle h, Outcome outcome) {
    ctx_.complete(commands_[h].request, outcome);
    commands_.release(h);
  }

  // ---- the database ---------------------------------------------------------------------

  /// The statement reaches the database: streams are read now (as of its arrival), the work
  /// follows from what it reads.
  void at_database(SlotHandle h) {
    Command& c = commands_[h];
    Account& a = accounts_[c.account];
    Time work = statement_time_;
    switch (c.stmt) {
      case Stmt::load_stream:
      case Stmt::audit_stream:
        c.loaded = c.stmt == Stmt::load_stream ? load(a, static_cast<std::int64_t>(a.events.size()))
                                               : load_as_of(a, c.as_of);
        work = load_work(c.loaded);
        if (counted(c)) replayed_.record(c.loaded.replayed);
        replayed_metric_.add(static_cast<double>(c.loaded.replayed));
        break;
      case Stmt::append:
        if (snapshot_due(c.loaded.version + 1)) work += statement_time_;  // and a snapshot
        break;
      default:
        break;
    }
    db_.submit(h, work);
  }

  bool snapshot_due(std::int64_t version) const {
    return snapshot_every_ > 0 && version % snapshot_every_ == 0;
  }

  /// The statement ends: rows are written and read now.
  void execute(SlotHandle h) {
    Command& c = commands_[h];
    Account& a = accounts_[c.account];
    switch (c.stmt) {
      case Stmt::select_row:
      case Stmt::audit_row:
        c.loaded.balance = c.answer = a.row_balance;
        c.loaded.version = a.row_reflected;
        if (c.stmt == Stmt::audit_row && c.answer != true_balance(a, c.as_of) && counted(c))
          ++audit_wrong_;
        break;
      case Stmt::update_row:
        // The deposits written since our SELECT are overwritten by this one.
        if (a.row_reflected > c.loaded.version) {
          const std::int64_t lost = a.row_reflected - c.loaded.version;
          if (counted(c)) lost_updates_ += lost;
          lost_metric_.add(static_cast<double>(lost));
        }
        a.row_balance = c.loaded.balance + c.amount;
        a.row_reflected = c.loaded.version + 1;
        commit_truth(a, c.amount);
        break;
      case Stmt::load_stream:
        break;
      case Stmt::append:
        c.conflicted = static_cast<std::int64_t>(a.events.size()) != c.loaded.version;
        if (c.conflicted) {
          ++c.conflicts;
          if (counted(c)) ++conflicts_;
          conflicts_metric_.add(1);
          break;
        }
        a.events.push_back({c.amount, ctx_.now()});
        events_metric_.add(1);
        if (snapshot_due(c.loaded.version + 1))
          a.snapshots.push_back({c.loaded.version + 1, c.loaded.balance + c.amount, ctx_.now()});
        commit_truth(a, c.amount);
        publish(c.account, c.loaded.version + 1);
        break;
      case Stmt::query_model:
        c.answer = a.projected_balance;
        if (a.projected_version < c.token && counted(c)) {
          ++stale_reads_;
          stale_metric_.add(1);
        }
        break;
      case Stmt::audit_stream:
        c.answer = c.loaded.balance;
        if (c.answer != true_balance(a, c.as_of) && counted(c)) ++audit_wrong_;
        break;
    }
    ctx_.after(db_delay_, [this, h] { on_reply(h); });
  }

  void commit_truth(Account& a, std::int64_t amount) {
    a.ledger.emplace_back(ctx_.now(), (a.ledger.empty() ? 0 : a.ledger.back().second) + amount);
  }

  // ---- the projector ----------------------------------------------------------------------

  /// A committed event waits for the projector's next poll (on a grid of poll_interval).
  void publish(std::uint32_t account, std::int64_t version) {
    unfetched_.push_back({account, version});
    backlog_metric_.add(1);
    if (poll_pending_) return;
    poll_pending_ = true;
    ctx_.hold();  // the drain waits for the read model
    const Time next = (ctx_.now() / poll_interval_ + 1) * poll_interval_;
    ctx_.after(next - ctx_.now(), [this] { poll(); });
  }
  void poll() {
    while (!unfetched_.empty()) {
      ctx_.hold();  // released when applied
      projector_.submit(unfetched_.pop_front(), apply_time_);
    }
    poll_pending_ = false;
    ctx_.release();
  }
  /// The projector applies one event to the read model.
  void project(Published& e) {
    Account& a = accounts_[e.account];
    const Event& event = a.events[static_cast<std::size_t>(e.version - 1)];
    a.projected_balance += event.amount;
    a.projected_version = e.version;
    const Time lag = ctx_.now() - event.committed;
    projection_lag_.record(lag);
    lag_metric_.set(to_seconds(lag));
    backlog_metric_.add(-1);
    while (!a.waiting_reads.empty() &&
           commands_[a.waiting_reads.front()].token <= a.projected_version) {
      const SlotHandle h = a.waiting_reads.pop_front();
      if (counted(commands_[h])) read_wait_.record(ctx_.now() - commands_[h].waiting_since);
      send(h, Stmt::query_model);
    }
    ctx_.release();
  }

  Variant variant_;
  Context& ctx_;
  std::vector<Account> accounts_;
  Time db_delay_, statement_time_, event_read_time_;
  std::int64_t snapshot_every_;
  std::uint32_t max_retries_;
  Time poll_interval_, apply_time_;
  double audit_share_;
  Time audit_horizon_;
  std::uint64_t draw_salt_;
  Metric &events_metric_, &conflicts_metric_, &lost_metric_, &stale_metric_, &replayed_metric_,
      &backlog_metric_, &lag_metric_;

  SlotPool<Command> commands_;
  Server<SlotHandle> db_;
  Server<Published> projector_;
  Fifo<Published> unfetched_;  // committed, not yet fetched by the projector
  bool poll_pending_ = false;

  Time counting_from_ = 0;
  std::int64_t lost_updates_ = 0, conflicts_ = 0, audits_ = 0, audit_wrong_ = 0, stale_reads_ = 0,
               read_waits_ = 0;
  Histogram read_wait_, replayed_, projection_lag_;
};

LessonInfo info() {
  return {
      "event_sourcing",
      "Event sourcing and CQRS: mutable rows vs an event log, projections and snapshots",
      "Accounts kept as mutable rows are updated by read-modify-write: two deposits that read "
      "the same row both write, and the second overwrites the first (a lost update). The row "
      "only holds its present value: the balance as of last week, or who changed what, is "
      "gone. Read models built from an event log by a projector lag behind it: the owner "
      "reads a balance without the deposit just acknowledged. And rebuilding an aggregate "
      "replays its whole stream, a cost that grows with every event.",
      "Keep every change as an event in an append-only stream; append with the version the "
      "command loaded (optimistic concurrency): a concurrent append makes it fail, and the "
      "command reloads and decides again, so nothing is overwritten, and any past state is a "
      "replay. Let the command return the stream version and have the owner's reads wait until "
      "the read model has applied it. Store a snapshot every K events so that a load reads "
      "one snapshot and at most K - 1 events.",
      {"EventStoreDB: streams, expected version on append, catch-up subscriptions, projections",
       "Axon Framework / Marten (PostgreSQL): aggregates rebuilt from events, snapshotting every "
       "N events, asynchronous projections",
       "Kafka as an event store with compacted snapshot topics; Debezium feeding read models",
       "Banking ledgers and accounting (append-only journals; the balance is derived)",
       "Martin Fowler, \"Event Sourcing\" (2005); Greg Young, CQRS documents (2010)"},
      {{"mutable_rows", true, "SELECT then UPDATE the account row: lost updates, no history"},
       {"event_log", false,
        "append-only streams with expected version; reads from an async read model"},
       {"read_your_writes", false,
        "event_log + the owner's reads wait for the read model to reach their version"},
       {"snapshots", false, "read_your_writes + a snapshot every snapshot_every events"}},
      {{"accounts", ParamType::integer, 1000, "accounts (streams); a request uses key % accounts",
        1, 1e7},
       {"db_delay", ParamType::duration, "1ms", "one-way network delay app <-> database", 0, 60},
       {"statement_time", ParamType::duration, "200us",
        "database time of a statement (a row read or written)", 0, 60},
       {"event_read_time", ParamType::duration, "20us",
        "database + application time per stream row read and applied (event or snapshot)", 0, 60},
       {"db_workers", ParamType::integer, 16, "statements the database runs at once", 1, 1e6},
       {"snapshot_every", ParamType::integer, 100,
        "snapshots: K, a snapshot is stored with every K-th event", 1, 1e9},
       {"max_retries", ParamType::integer, 20,
        "event logs: reloads after a refused append before the command fails", 0, 1e6},
       {"poll_interval", ParamType::duration, "100ms",
        "the projector fetches new events this often", 1e-6, 3600},
       {"apply_time", ParamType::duration, "100us", "projector time per event applied", 0, 60},
       {"audit_share", ParamType::real, 0.1,
        "share of reads that ask for the balance as of a past time", 0, 1},
       {"audit_horizon", ParamType::duration, "30s",
        "an audit asks for a time uniform(0, this) ago", 0, 1e7}},
      {{"slow_db",
        "statements take `factor` times longer for `duration`",
        {{"factor", ParamType::real, 5.0, "statement time multiplier", 1e-3, 1e6},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"stall_projection",
        "the projector stops for `duration` (a redeploy, a poison event): the read model falls "
        "behind the log",
        {{"duration", ParamType::duration, "5s", "how long", 0, 1e7}}}},
      {{"rebuild",
        "load the account as a command would now: events, replayed, rows read, balance, cost "
        "(statement_time + rows x event_read_time)",
        {{"account", ParamType::integer, 0, "the account", 0, 1e7}}},
       {"as_of",
        "the balance as of `time` as an audit would get it now, the true one, events replayed",
        {{"account", ParamType::integer, 0, "the account", 0, 1e7},
         {"time", ParamType::duration, Value(), "as of when", -1e7, 1e7}}},
       {"account",
        "the account's stream length, snapshots, balance, true balance and read model",
        {{"account", ParamType::integer, 0, "the account", 0, 1e7}}}},
      {{"events", MetricSpec::Kind::counter, "events appended"},
       {"conflicts", MetricSpec::Kind::counter, "appends refused by the expected version"},
       {"lost_updates", MetricSpec::Kind::counter, "row updates overwritten by another"},
       {"stale_reads", MetricSpec::Kind::counter,
        "reads of the read model without the owner's acknowledged deposit"},
       {"replayed_events", MetricSpec::Kind::counter, "events replayed to load aggregates"},
       {"projection_backlog", MetricSpec::Kind::gauge,
        "events committed and not yet applied to the read model"},
       {"projection_lag_seconds", MetricSpec::Kind::gauge,
        "commit to read model, of the event applied last"}},
      {{"lost_updates", Unit::count, "row updates overwritten by a concurrent one"},
       {"conflicts", Unit::count, "appends refused (expected version) and retried"},
       {"audits", Unit::count, "reads asking for a balance as of a past time"},
       {"audit_wrong", Unit::count, "audits answered with another balance than the true one"},
       {"stale_reads", Unit::count, "balance reads without the owner's acknowledged deposit"},
       {"read_waits", Unit::count, "reads that waited for the read model"},
       {"read_wait_p99", Unit::seconds, "99th percentile of those waits"},
       {"replayed_mean", Unit::number, "events replayed per stream load"},
       {"replayed_max", Unit::count, "most events replayed by one load"},
       {"stream_max", Unit::count, "events in the longest stream"},
       {"snapshots", Unit::count, "snapshots stored"},
       {"projection_lag_p99", Unit::seconds, "99th percentile of commit -> read model"},
       {"storage_bytes", Unit::bytes,
        "rows (32 B each) or events (64 B) and snapshots (48 B) stored"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"mutable_rows", Variant::mutable_rows},
      {"event_log", Variant::event_log},
      {"read_your_writes", Variant::read_your_writes},
      {"snapshots", Variant::snapshots}};
  return std::make_unique<EventSourcing>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
