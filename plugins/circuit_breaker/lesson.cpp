// Circuit breaker and bulkhead: keep a failing dependency from taking the caller down with it.
//
//   setup:    a caller serves requests with a pool of `pool` connections (threads). A request
//             of class d (key % 2) holds a connection while it calls downstream d.
//   problem:  none(request) -> conn = pool.acquire() or 503; call downstream, wait up to 30 s
//             when downstream 0 hangs, each of its calls holds a connection for the full 30 s
//             timeout: the pool is exhausted in a fraction of a second and requests for the
//             healthy downstream 1 are refused too. The caller's availability collapses
//             (a cascading failure) although only one dependency is down.
//   fix:      breaker(request) -> per downstream, over the last `window` calls:
//               closed:    call; if failures / calls >= failure_rate (>= min_calls) -> open
//               open:      fail fast without calling, for `open_timeout` -> half_open
//               half_open: let `probes` trial calls through; a failure -> open,
//                          `probes` successes -> closed
//             bulkhead(request) -> a separate pool per downstream: a hanging dependency can
//               only exhaust its own compartment, never the healthy one's.
//             breaker_bulkhead -> both: contain the damage at once, then fail fast, then recover.
#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/failure_window.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;

enum class State { closed, open, half_open };
const char* state_name(State s) {
  static const char* names[] = {"closed", "open", "half_open"};
  return names[static_cast<int>(s)];
}

constexpr int kDownstreams = 2;

/// One downstream dependency as the fault injector left it.
struct Downstream {
  double error_rate = 0;  // fraction of calls that fail (after their service time)
  bool hanging = false;   // calls never answer: the caller's timeout ends them
};

/// A breaker guarding one downstream: count-based sliding window of the last calls.
struct Breaker {
  State state = State::closed;
  FailureWindow outcomes;  // of the last `window` calls
  int probes_in_flight = 0, probe_successes = 0;
  std::uint32_t epoch = 0;  // bumped at every transition: late results of older calls are ignored
};

/// A call in progress, holding one connection of a pool.
struct Call {
  Request request;
  std::uint32_t epoch = 0;  // of its breaker when it started
  std::uint8_t downstream = 0;
  Outcome outcome = Outcome::ok;
  bool probe = false;
};

struct Transition {
  Time at;
  int downstream;
  State from, to;
};

struct Protection {
  bool breaker, bulkhead;
};

/// Connections of pool `i`: a bulkhead splits them between the two downstreams' pools; without
/// one, pool 0 holds them all and pool 1 none.
int pool_size(const Params& p, bool bulkhead, int i) {
  const auto pool = p.integer<int>("pool");
  if (!bulkhead) return i == 0 ? pool : 0;
  return i == 0 ? pool / 2 : pool - pool / 2;
}

class Caller final : public System {
 public:
  Caller(Protection protection, const Params& p, Context& ctx)
      : use_breaker_(protection.breaker),
        bulkhead_(protection.bulkhead),
        ctx_(ctx),
        timeout_(p.duration("timeout")),
        window_(p.integer<std::size_t>("window")),
        min_calls_(p.integer<std::size_t>("min_calls")),
        failure_rate_(p.real("failure_rate")),
        open_timeout_(p.duration("open_timeout")),
        probes_(p.integer<int>("probes")),
        error_salt_(ctx.rng().next()),
        state_metric_{&ctx.metric("state", "0"), &ctx.metric("state", "1")},
        transitions_metric_(ctx.metric("transitions")),
        in_use_metric_(ctx.metric("connections_in_use")),
        short_circuit_metric_(ctx.metric("short_circuited")),
        // A connection pool is a server without a queue: a call holds a connection (a worker)
        // for its duration, or finds none free and is refused.
        pools_{
            {Server<Call>(ctx, {pool_size(p, bulkhead_, 0), 0}, [this](Call& c) { finish(c); }),
             Server<Call>(ctx, {pool_size(p, bulkhead_, 1), 0}, [this](Call& c) { finish(c); })}},
        breakers_{Breaker{.outcomes = FailureWindow(window_)},
                  Breaker{.outcomes = FailureWindow(window_)}} {
    if (bulkhead_ && pool_size(p, true, 0) == 0)
      throw std::invalid_argument(
          "a bulkhead needs a pool of at least 2 connections, one per downstream (pool = " +
          std::to_string(p.integer("pool")) + ")");
    if (min_calls_ > window_)
      throw std::invalid_argument("min_calls (" + std::to_string(min_calls_) +
                                  ") cannot exceed the window (" + std::to_string(window_) + ")");
  }

  void handle(const Request& r) override {
    const auto d = static_cast<std::uint8_t>(r.key % kDownstreams);
    ++requests_[d];
    Breaker& b = breakers_[d];
    if (use_breaker_ &&
        (b.state == State::open ||
         (b.state == State::half_open && b.probes_in_flight + b.probe_successes >= probes_))) {
      ++short_circuited_;
      ++failed_[d];
      short_circuit_metric_.add(1);
      return ctx_.complete(r, Outcome::rejected);  // fail fast: no connection, no call
    }
    const bool probe = use_breaker_ && b.state == State::half_open;
    // What the call will meet: drawn per request, so that every variant sees the same errors.
    const Downstream& down = downstreams_[d];
    Call call{r, b.epoch, d, Outcome::ok, probe};
    Time duration = std::min(r.service, timeout_);
    if (down.hanging || r.service > timeout_)
      duration = timeout_, call.outcome = Outcome::timeout;
    else if (down.error_rate > 0 && Rng::uniform_at(error_salt_, r.id, d) < down.error_rate)
      call.outcome = Outcome::error;
    if (pools_[bulkhead_ ? d : 0].submit(std::move(call), duration) == Admission::rejected) {
      ++pool_full_;
      ++failed_[d];
      return ctx_.complete(r, Outcome::rejected);  // 503: no connection free
    }
    ++downstream_calls_;
    if (probe) ++b.probes_in_flight;
    in_use_metric_.add(1);
  }

  Value call(const std::string& op, const Value&) override {
    if (op == "transitions") {
      List out;
      for (const Transition& t : transitions_)
        out.push_back(Map{{"at", to_seconds(t.at)},
                          {"downstream", t.downstream},
                          {"from", state_name(t.from)},
                          {"to", state_name(t.to)}});
      return out;
    }
    if (op == "stats")
      return Map{{"requests_0", requests_[0]},
                 {"ok_0", ok_[0]},
                 {"failed_0", failed_[0]},
                 {"requests_1", requests_[1]},
                 {"ok_1", ok_[1]},
                 {"failed_1", failed_[1]},
                 {"in_use", in_use()},
                 {"state_0", state_name(breakers_[0].state)},
                 {"state_1", state_name(breakers_[1].state)}};
    throw std::invalid_argument("unknown operation '" + op + "'");
  }

  void inject(const std::string& fault, const Value& p) override {
    Downstream& d = downstreams_[p["downstream"].as_int()];
    if (fault == "downstream_errors") {
      d.error_rate = p["rate"].as_double();
    } else if (fault == "downstream_hang") {
      d.hanging = true;
    } else if (fault == "downstream_recover") {
      d = Downstream{};  // calls already hanging stay hung until their timeout
    }
  }

  Map figures() const override {
    auto availability = [this](int d) {
      return requests_[d] > 0 ? static_cast<double>(ok_[d]) / static_cast<double>(requests_[d])
                              : 1.0;
    };
    return {{"availability_0", availability(0)},
            {"availability_1", availability(1)},
            {"pool_full", pool_full_},
            {"short_circuited", short_circuited_},
            {"downstream_calls", downstream_calls_},
            {"transitions", static_cast<std::int64_t>(transitions_.size())}};
  }

  void reset_stats() override {
    requests_ = ok_ = failed_ = {};
    pool_full_ = short_circuited_ = downstream_calls_ = 0;
    transitions_.clear();
  }

 private:
  std::int64_t in_use() const { return pools_[0].busy() + pools_[1].busy(); }

  void finish(const Call& c) {
    const int d = c.downstream;
    in_use_metric_.add(-1);
    ++(c.outcome == Outcome::ok ? ok_ : failed_)[d];
    ctx_.complete(c.request, c.outcome);
    if (use_breaker_) record(d, c.outcome == Outcome::ok, c.probe, c.epoch);
  }

  void record(int d, bool success, bool probe, std::uint32_t epoch) {
    Breaker& b = breakers_[d];
    if (epoch != b.epoch) return;  // started under an earlier state
    if (b.state == State::half_open) {
      if (!probe) return;
      --b.probes_in_flight;
      if (!success) return move(d, State::open);
      if (++b.probe_successes >= probes_) move(d, State::closed);
      return;
    }
    if (b.state != State::closed) return;
    b.outcomes.record(success);
    if (b.outcomes.tripped(min_calls_, failure_rate_)) move(d, State::open);
  }

  void move(int d, State to) {
    Breaker& b = breakers_[d];
    transitions_.push_back({ctx_.now(), d, b.state, to});
    transitions_metric_.add(1);
    state_metric_[d]->set(static_cast<double>(to));
    ctx_.log("breaker " + std::to_string(d) + ": " + state_name(b.state) + " -> " + state_name(to));
    b.state = to;
    ++b.epoch;
    b.probes_in_flight = b.probe_successes = 0;
    if (to == State::closed) {
      b.outcomes.clear();
    } else if (to == State::open) {  // only this timer ends the open state
      ctx_.after(open_timeout_, [this, d] { move(d, State::half_open); });
    }
  }

  bool use_breaker_, bulkhead_;
  Context& ctx_;
  Time timeout_;
  std::size_t window_, min_calls_;
  double failure_rate_;
  Time open_timeout_;
  int probes_;
  std::uint64_t error_salt_;
  std::array<Metric*, kDownstreams> state_metric_;
  Metric& transitions_metric_;
  Metric& in_use_metric_;
  Metric& short_circuit_metric_;
  std::array<Server<Call>, kDownstreams> pools_;  // a shared pool, or one per downstream
  std::array<Downstream, kDownstreams> downstreams_{};
  std::array<Breaker, kDownstreams> breakers_;
  std::array<std::int64_t, kDownstreams> requests_{}, ok_{}, failed_{};  // failed: completed not ok
  std::vector<Transition> transitions_;
  std::int64_t pool_full_ = 0, short_circuited_ = 0, downstream_calls_ = 0;
};

LessonInfo info() {
  const ParamSpec downstream{"downstream",
                             ParamType::integer,
                             0,
                             "which downstream (0 or 1; a request uses key % 2)",
                             0,
                             1};
  return {
      "circuit_breaker",
      "Circuit breaker and bulkhead: surviving a failing dependency",
      "A caller with a pool of connections calls a dependency that hangs. Each call holds a "
      "connection until the 30 s timeout, so the pool is exhausted within a second and "
      "requests that need only healthy dependencies are refused too: one dead dependency "
      "takes the caller's whole availability down (a cascading failure), and keeps it down "
      "as long as the dependency is sick.",
      "A circuit breaker per dependency watches the failure rate of the last calls; above a "
      "threshold it opens and fails calls fast without making them, after a timeout it lets a "
      "few probe calls through (half-open) and closes again when they succeed. A bulkhead "
      "gives each dependency its own pool, so a hanging one can only exhaust its own share.",
      {"Netflix Hystrix (breaker + thread-pool bulkheads)", "Resilience4j CircuitBreaker",
       "Envoy outlier detection and circuit breaking", "Polly (.NET)",
       "AWS SDK retry/circuit settings"},
      {{"none", true, "one shared pool, 30 s timeouts, no breaker"},
       {"breaker", false, "a closed/open/half-open breaker per downstream, one shared pool"},
       {"bulkhead", false, "a separate pool per downstream, no breaker"},
       {"breaker_bulkhead", false, "a breaker and a bulkhead per downstream"}},
      {{"pool", ParamType::integer, 40, "caller connections in total (split in 2 by a bulkhead)", 1,
        1e6},
       {"timeout", ParamType::duration, "30s", "caller timeout on a downstream call", 1e-6, 86400},
       {"window", ParamType::integer, 20, "breaker: number of recent calls it judges", 1, 1e6},
       {"min_calls", ParamType::integer, 10, "breaker: calls needed before it may open", 1, 1e6},
       {"failure_rate", ParamType::real, 0.5, "breaker: failure share that opens it", 0.01, 1},
       {"open_timeout", ParamType::duration, "5s", "breaker: time open before half-open", 1e-6,
        86400},
       {"probes", ParamType::integer, 3, "breaker: successful half-open calls that close it", 1,
        1e6}},
      {{"downstream_errors",
        "a fraction of the downstream's calls fail",
        {downstream, {"rate", ParamType::real, 1.0, "fraction of calls failing", 0, 1}}},
       {"downstream_hang",
        "the downstream stops answering: calls last until the timeout",
        {downstream}},
       {"downstream_recover",
        "the downstream is healthy again (hung calls stay hung)",
        {downstream}}},
      {{"transitions", "breaker state changes: list of {at (s), downstream, from, to}", {}},
       {"stats",
        "per downstream: requests, ok and failed answers; connections in use; breaker states",
        {}}},
      {{"state",
        MetricSpec::Kind::gauge,
        "breaker state of each downstream: 0 closed, 1 open, 2 half-open",
        "downstream",
        {"0", "1"}},
       {"transitions", MetricSpec::Kind::counter, "breaker state changes"},
       {"connections_in_use", MetricSpec::Kind::gauge, "caller connections held by calls"},
       {"short_circuited", MetricSpec::Kind::counter, "requests failed fast by an open breaker"}},
      {{"availability_0", Unit::fraction, "share of downstream 0's requests answered ok"},
       {"availability_1", Unit::fraction, "share of downstream 1's requests answered ok"},
       {"pool_full", Unit::count, "requests refused: no connection free"},
       {"short_circuited", Unit::count, "requests failed fast by an open breaker"},
       {"downstream_calls", Unit::count, "calls made to the downstreams"},
       {"transitions", Unit::count, "breaker state changes"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Protection> protections[] = {
      {"none", {false, false}},
      {"breaker", {true, false}},
      {"bulkhead", {false, true}},
      {"breaker_bulkhead", {true, true}}};
  return std::make_unique<Caller>(variant_value(variant, protections), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
