// Retry with backoff: N clients updating one row with optimistic concurrency (Brooker, "Exponential
// Backoff And Jitter", AWS Architecture Blog, 2015).
//
//   one attempt:  v = read(row)                  // one network round trip
//                 ok = write(row, if_version = v)  // commits only if nobody committed since
//   problem:      no_backoff(attempt)  -> retry at once: every loser of a round competes again in
//                                         the next one, N rounds for N clients, ~N^2/2 calls
//                 exponential(attempt) -> sleep = min(cap, base * 2^attempt): fewer rounds, but
//                                         the losers of a round all sleep the same time and
//                                         collide again, cluster after cluster
//   fix:          full_jitter          -> sleep = uniform(0, t), t = min(cap, base * 2^attempt)
//                 equal_jitter         -> sleep = t/2 + uniform(0, t/2)
//                 decorrelated_jitter  -> sleep = min(cap, uniform(base, 3 * previous sleep))
//                 jitter spreads the retries in time, so most attempts meet an idle row.
//
// Contenders come from the workload (each request is one client updating row key % rows, completed
// ok when its write commits, error when it gives up after max_attempts) or from the `contend`
// operation (a burst of N clients starting at the same instant, as in the study). Each client
// draws its network delays and its jitter from its own id and attempt number, so the variants
// meet the same network: they differ only by how they back off.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Strategy { none, exponential, full_jitter, equal_jitter, decorrelated_jitter };

/// One client trying to update its row until it commits or gives up.
struct Contender {
  Request request;          // the workload request (unused for a contend burst)
  std::int32_t batch = -1;  // index of its contend burst, -1 for a workload request
  std::uint32_t row = 0;
  std::uint64_t id = 0;  // the request's id, or a burst contender's own
  std::uint64_t read_version = 0;
  std::int64_t failures = 0;  // failed attempts so far
  Time sleep = 0;             // decorrelated jitter: the previous sleep
  Rng network{0};             // its network delays, seeded from its id
};

/// A burst of contenders started together by the `contend` operation.
struct Batch {
  std::int64_t clients = 0, succeeded = 0, gave_up = 0, calls = 0;
  Time started = 0, last_finish = 0;
  std::int64_t finished() const { return succeeded + gave_up; }
};

class OccRow final : public System {
 public:
  OccRow(Strategy strategy, const Params& p, Context& ctx)
      : strategy_(strategy),
        ctx_(ctx),
        base_(p.duration("base")),
        cap_(p.duration("cap")),
        max_attempts_(p.integer("max_attempts")),
        delay_mean_(static_cast<double>(p.duration("network_delay"))),
        delay_sd_(static_cast<double>(p.duration("network_jitter"))),
        salt_(ctx.rng().next()),
        versions_(p.integer<std::size_t>("rows"), 0),
        calls_metric_(ctx.metric("calls")),
        failed_metric_(ctx.metric("failed_calls")),
        gave_up_metric_(ctx.metric("gave_up")),
        retrying_metric_(ctx.metric("retrying")) {
    if (base_ > cap_)
      throw std::invalid_argument("base (" + std::to_string(to_milliseconds(base_)) +
                                  " ms) must not exceed cap (" +
                                  std::to_string(to_milliseconds(cap_)) + " ms)");
  }

  void handle(const Request& r) override {
    const SlotHandle h = contenders_.acquire();
    contenders_[h].request = r;
    begin(h, r.id, -1, r.key % versions_.size());
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "contend") {
      const std::int64_t clients = args["clients"].as_int();
      const std::int64_t row = args["row"].as_int();
      if (row >= static_cast<std::int64_t>(versions_.size()))
        throw std::invalid_argument("row " + std::to_string(row) + " does not exist (0.." +
                                    std::to_string(versions_.size() - 1) + ")");
      const auto batch = static_cast<std::int32_t>(batches_.size());
      Batch& b = batches_.emplace_back();
      b.clients = clients;
      b.started = ctx_.now();
      for (std::int64_t i = 0; i < clients; ++i)  // ids apart from the workload's
        begin(contenders_.acquire(), kBurstIds + burst_clients_++, batch,
              static_cast<std::uint64_t>(row));
      return Map{{"batch", batch}, {"clients", clients}};
    }
    List out;  // "batches"
    for (const Batch& b : batches_)
      out.push_back(
          Map{{"clients", b.clients},
              {"calls", b.calls},
              {"succeeded", b.succeeded},
              {"gave_up", b.gave_up},
              {"unfinished", b.clients - b.finished()},
              {"completion_ms",
               b.finished() == b.clients ? to_milliseconds(b.last_finish - b.started) : -1.0}});
    return out;
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "outage") outage_until_ = ctx_.now() + p["duration"].as_int();
  }

  Map figures() const override {
    return {{"calls", calls_},
            {"failed_calls", failed_calls_},
            {"gave_up", gave_up_},
            {"completion_ms", started_ ? to_milliseconds(last_finish_ - first_start_) : 0.0},
            {"unfinished", static_cast<std::int64_t>(contenders_.in_use())}};
  }

  void reset_stats() override {  // contend bursts keep their own counts
    calls_ = failed_calls_ = gave_up_ = 0;
    started_ = contenders_.in_use() > 0;  // completion then counts from the end of the warm-up
    first_start_ = last_finish_ = ctx_.now();
  }

 private:
  static constexpr std::uint64_t kBurstIds = std::uint64_t{1} << 63;

  void begin(SlotHandle h, std::uint64_t id, std::int32_t batch, std::uint64_t row) {
    if (!started_) first_start_ = ctx_.now(), started_ = true;
    retrying_metric_.add(1);
    Contender& c = contenders_[h];
    c.batch = batch;
    c.row = static_cast<std::uint32_t>(row);
    c.id = id;
    c.failures = 0;
    c.sleep = base_;
    c.network.reseed(Rng::hash(salt_ ^ id));
    ctx_.after(hop(c), [this, h] { on_read(h); });
  }

  /// One network hop: |normal(mean, sd)|, as in the study's simulator.
  Time hop(Contender& c) {
    return round_time(std::abs(delay_mean_ + delay_sd_ * c.network.normal()));
  }

  /// The read reaches the database: remember the version, then the reply and the conditional
  /// write travel (two hops).
  void on_read(SlotHandle h) {
    Contender& c = contenders_[h];
    c.read_version = versions_[c.row];
    const Time delay = hop(c) + hop(c);
    ctx_.after(delay, [this, h] { on_write(h); });
  }

  /// The conditional write reaches the database: one call.
  void on_write(SlotHandle h) {
    Contender& c = contenders_[h];
    ++calls_;
    calls_metric_.add(1);
    if (c.batch >= 0) ++batches_[static_cast<std::size_t>(c.batch)].calls;
    const bool available = ctx_.now() >= outage_until_;
    if (available && versions_[c.row] == c.read_version) {
      ++versions_[c.row];
      ctx_.after(hop(c), [this, h] { finish(h, true); });
      return;
    }
    ++failed_calls_;
    failed_metric_.add(1);
    if (++c.failures >= max_attempts_) {
      ctx_.after(hop(c), [this, h] { finish(h, false); });
      return;
    }
    // The failure travels back, the client sleeps, then sends its next read.
    const Time reply = hop(c);
    const Time sleep = backoff(c);
    ctx_.after(reply + sleep + hop(c), [this, h] { on_read(h); });
  }

  Time backoff(Contender& c) {
    if (strategy_ == Strategy::none) return 0;
    // This client's draw for this retry: the same in every variant.
    const double u = Rng::uniform_at(salt_, c.id, static_cast<std::uint64_t>(c.failures));
    if (strategy_ == Strategy::decorrelated_jitter) {
      const double lo = static_cast<double>(base_), hi = 3.0 * static_cast<double>(c.sleep);
      c.sleep = std::min(cap_, round_time(lo + u * (hi - lo)));
      return c.sleep;
    }
    // Exponential ceiling; the first retry follows failure 1, so it waits up to 2 * base.
    const double ceiling =
        std::min(static_cast<double>(cap_),
                 std::ldexp(static_cast<double>(base_),
                            static_cast<int>(std::min<std::int64_t>(c.failures, 62))));
    // The share of it slept: all of it, a random share, or half and a random half.
    const double share = strategy_ == Strategy::exponential   ? 1
                         : strategy_ == Strategy::full_jitter ? u
                                                              : 0.5 + u / 2;
    return round_time(share * ceiling);
  }

  void finish(SlotHandle h, bool committed) {
    const Contender& c = contenders_[h];
    last_finish_ = ctx_.now();
    if (!committed) {
      ++gave_up_;
      gave_up_metric_.add(1);
    }
    if (c.batch >= 0) {
      Batch& b = batches_[static_cast<std::size_t>(c.batch)];
      ++(committed ? b.succeeded : b.gave_up);
      b.last_finish = ctx_.now();
    } else {
      ctx_.complete(c.request, committed ? Outcome::ok : Outcome::error);
    }
    contenders_.release(h);
    retrying_metric_.add(-1);
  }

  Strategy strategy_;
  Context& ctx_;
  Time base_, cap_;
  std::int64_t max_attempts_;
  double delay_mean_, delay_sd_;
  std::uint64_t salt_;  // from the lesson's random stream: the same in every variant
  std::vector<std::uint64_t> versions_;  // one version counter per row
  Metric& calls_metric_;
  Metric& failed_metric_;
  Metric& gave_up_metric_;
  Metric& retrying_metric_;
  SlotPool<Contender> contenders_;
  std::vector<Batch> batches_;
  std::uint64_t burst_clients_ = 0;
  Time outage_until_ = 0;
  bool started_ = false;
  Time first_start_ = 0, last_finish_ = 0;
  std::int64_t calls_ = 0, failed_calls_ = 0, gave_up_ = 0;
};

LessonInfo info() {
  return {
      "retry_backoff",
      "Retry with backoff and jitter: contending clients on one row",
      "Clients that retry a failed optimistic write at once compete again in every round: with "
      "N clients only one wins per round, so the work grows as N^2. Capped exponential backoff "
      "slows them down, but clients that failed together sleep the same time and collide again "
      "together: the calls stay clustered.",
      "Add randomness to the backoff. Full jitter (sleep uniform in [0, min(cap, base*2^n)]), "
      "equal jitter (half fixed, half random) and decorrelated jitter (uniform in "
      "[base, 3*previous]) spread the retries so most attempts meet an idle row: less than half "
      "the calls of plain exponential backoff at 100 clients, and a shorter completion time.",
      {"AWS SDKs (standard retry mode: exponential backoff with full jitter)",
       "gRPC connection backoff (jittered exponential)", "Google Cloud client libraries",
       "DynamoDB conditional writes with the DynamoDBMapper optimistic locking"},
      {{"no_backoff", true, "retry at once after a failed write"},
       {"exponential", false, "capped exponential backoff without jitter: still clustered"},
       {"full_jitter", false, "sleep uniform in [0, min(cap, base*2^attempt)]"},
       {"equal_jitter", false, "half of the exponential sleep fixed, half random"},
       {"decorrelated_jitter", false, "sleep uniform in [base, 3 * previous sleep], capped"}},
      {{"base", ParamType::duration, "5ms", "backoff base: the first retry waits up to 2*base",
        1e-6, 3600},
       {"cap", ParamType::duration, "2s", "the longest backoff sleep", 1e-6, 86400},
       {"max_attempts", ParamType::integer, 1000, "attempts before a client gives up (error)", 1,
        1e6},
       {"network_delay", ParamType::duration, "10ms", "mean one-way network delay", 0, 60},
       {"network_jitter", ParamType::duration, "2ms",
        "standard deviation of the network delay (|normal(mean, sd)|)", 0, 60},
       {"rows", ParamType::integer, 1, "rows contended for; a request updates row key % rows", 1,
        1e7}},
      {{"outage",
        "the database refuses every write for a while (failover): each attempt is a failed call",
        {{"duration", ParamType::duration, "2s", "how long writes are refused", 0, 86400}}}},
      {{"contend",
        "start a burst of clients that each update a row once, all at this instant (the study)",
        {{"clients", ParamType::integer, 100, "contending clients", 1, 1e6},
         {"row", ParamType::integer, 0, "the row they all update", 0, 1e7}}},
       {"batches",
        "per contend burst: clients, calls, succeeded, gave_up, unfinished, completion_ms",
        {}}},
      {{"calls", MetricSpec::Kind::counter, "write attempts that reached the database"},
       {"failed_calls", MetricSpec::Kind::counter, "writes refused (version conflict or outage)"},
       {"gave_up", MetricSpec::Kind::counter, "clients that gave up after max_attempts"},
       {"retrying", MetricSpec::Kind::gauge, "clients still trying to commit"}},
      {{"calls", Unit::count, "conditional writes that reached the database"},
       {"failed_calls", Unit::count, "writes refused: version conflict or outage"},
       {"gave_up", Unit::count, "clients that failed max_attempts times"},
       {"completion_ms", Unit::number,
        "milliseconds from the first client's start to the last one's end"},
       {"unfinished", Unit::count, "clients still retrying when the experiment ended"}},
      // The work is the network and the row, not the request's service time.
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Strategy> strategies[] = {
      {"no_backoff", Strategy::none},
      {"exponential", Strategy::exponential},
      {"full_jitter", Strategy::full_jitter},
      {"equal_jitter", Strategy::equal_jitter},
      {"decorrelated_jitter", Strategy::decorrelated_jitter}};
  return std::make_unique<OccRow>(variant_value(variant, strategies), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
