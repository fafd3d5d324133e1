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
#include <vector>

#include "hldlab/plugin.hpp"

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
  std::vector<bool> ring;  // true = failure; the last `window` call results
  std::size_t next = 0, recorded = 0, failures = 0;
  int probes_in_flight = 0, probe_successes = 0;
  std::uint32_t epoch = 0;  // bumped at every transition: late results of older calls are ignored
};

/// A call in progress, holding one connection.
struct Call {
  Request request;
  std::uint32_t generation = 0;
  std::uint32_t epoch = 0;
  std::uint8_t downstream = 0;
  Outcome outcome = Outcome::ok;
  bool probe = false;
};

struct Transition {
  Time at;
  int downstream;
  State from, to;
};

class Caller final : public System {
 public:
  Caller(bool breaker, bool bulkhead, const Params& p, Context& ctx)
      : use_breaker_(breaker),
        bulkhead_(bulkhead),
        ctx_(ctx),
        timeout_(p.duration("timeout")),
        window_(static_cast<std::size_t>(p.integer("window"))),
        min_calls_(static_cast<std::size_t>(p.integer("min_calls"))),
        failure_rate_(p.real("failure_rate")),
        open_timeout_(p.duration("open_timeout")),
        probes_(static_cast<int>(p.integer("probes"))),
        state_metric_{&ctx.metric("state_0"), &ctx.metric("state_1")},
        transitions_metric_(ctx.metric("transitions")),
        in_use_metric_(ctx.metric("connections_in_use")),
        short_circuit_metric_(ctx.metric("short_circuited")) {
    const auto pool = p.integer("pool");
    if (bulkhead_ && pool < kDownstreams)
      throw std::invalid_argument(
          "a bulkhead needs a pool of at least 2 connections, one per "
          "downstream (pool = " +
          std::to_string(pool) + ")");
    if (min_calls_ > window_)
      throw std::invalid_argument("min_calls (" + std::to_string(min_calls_) +
                                  ") cannot exceed the window (" + std::to_string(window_) + ")");
    if (bulkhead_) {
      capacity_[0] = static_cast<int>(pool / 2);
      capacity_[1] = static_cast<int>(pool - pool / 2);
    } else {
      capacity_[0] = static_cast<int>(pool);
    }
    for (Breaker& b : breakers_) b.ring.assign(window_, false);
  }

  void handle(const Request& r) override {
    const auto d = static_cast<std::uint8_t>(r.key % kDownstreams);
    ++requests_[d];
    bool probe = false;
    if (use_breaker_) {
      Breaker& b = breakers_[d];
      if (b.state == State::open ||
          (b.state == State::half_open && b.probes_in_flight + b.probe_successes >= probes_)) {
        ++short_circuited_;
        ++failed_[d];
        short_circuit_metric_.add(1);
        return ctx_.complete(r, Outcome::rejected);  // fail fast: no connection, no call
      }
      probe = b.state == State::half_open;
    }
    const int compartment = bulkhead_ ? d : 0;
    if (in_use_[compartment] >= capacity_[compartment]) {
      ++pool_full_;
      ++failed_[d];
      return ctx_.complete(r, Outcome::rejected);  // 503: no connection free
    }
    ++in_use_[compartment];
    in_use_metric_.set(static_cast<double>(in_use_[0] + in_use_[1]));
    if (probe) ++breakers_[d].probes_in_flight;
    start_call(r, d, probe);
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
                 {"in_use", in_use_[0] + in_use_[1]},
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

 private:
  void start_call(const Request& r, std::uint8_t d, bool probe) {
    ++downstream_calls_;
    std::uint32_t slot;
    if (free_.empty()) {
      slot = static_cast<std::uint32_t>(calls_.size());
      calls_.emplace_back();
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    Call& c = calls_[slot];
    c.request = r;
    c.downstream = d;
    c.probe = probe;
    c.epoch = breakers_[d].epoch;
    const Downstream& down = downstreams_[d];
    Time delay = std::min(r.service, timeout_);
    c.outcome = r.service > timeout_ ? Outcome::timeout : Outcome::ok;
    if (down.hanging) {
      delay = timeout_;
      c.outcome = Outcome::timeout;
    } else if (down.error_rate >= 1 ||
               (down.error_rate > 0 && ctx_.rng().chance(down.error_rate))) {
      c.outcome = Outcome::error;
    }
    ctx_.after(delay, [this, slot, g = c.generation] { finish(slot, g); });
  }

  void finish(std::uint32_t slot, std::uint32_t generation) {
    Call& c = calls_[slot];
    if (c.generation != generation) return;
    const int d = c.downstream;
    --in_use_[bulkhead_ ? d : 0];
    in_use_metric_.set(static_cast<double>(in_use_[0] + in_use_[1]));
    ++(c.outcome == Outcome::ok ? ok_ : failed_)[d];
    ctx_.complete(c.request, c.outcome);
    if (use_breaker_) record(d, c.outcome == Outcome::ok, c.probe, c.epoch);
    ++c.generation;
    free_.push_back(slot);
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
    if (b.recorded == window_)
      b.failures -= b.ring[b.next] ? 1 : 0;
    else
      ++b.recorded;
    b.ring[b.next] = !success;
    b.failures += success ? 0 : 1;
    b.next = (b.next + 1) % window_;
    if (b.recorded >= min_calls_ &&
        static_cast<double>(b.failures) >= failure_rate_ * static_cast<double>(b.recorded))
      move(d, State::open);
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
      std::fill(b.ring.begin(), b.ring.end(), false);
      b.next = b.recorded = b.failures = 0;
    } else if (to == State::open) {
      ctx_.after(open_timeout_, [this, d, epoch = b.epoch] {
        if (breakers_[d].epoch == epoch) move(d, State::half_open);
      });
    }
  }

  bool use_breaker_, bulkhead_;
  Context& ctx_;
  Time timeout_;
  std::size_t window_, min_calls_;
  double failure_rate_;
  Time open_timeout_;
  int probes_;
  std::array<Metric*, kDownstreams> state_metric_;
  Metric& transitions_metric_;
  Metric& in_use_metric_;
  Metric& short_circuit_metric_;
  std::array<int, kDownstreams> capacity_{}, in_use_{};
  std::array<Downstream, kDownstreams> downstreams_{};
  std::array<Breaker, kDownstreams> breakers_{};
  std::array<std::int64_t, kDownstreams> requests_{}, ok_{}, failed_{};  // failed: completed not ok
  std::vector<Call> calls_;
  std::vector<std::uint32_t> free_;
  std::vector<Transition> transitions_;
  std::int64_t pool_full_ = 0, short_circuited_ = 0, downstream_calls_ = 0;
};

class CircuitBreaker final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const ParamSpec downstream{"downstream",
                                      ParamType::integer,
                                      0,
                                      "which downstream (0 or 1; a request uses key % 2)",
                                      0,
                                      1};
    static const LessonInfo info{
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
        {{"pool", ParamType::integer, 40, "caller connections in total (split in 2 by a bulkhead)",
          1, 1e6},
         {"timeout", ParamType::duration, "30s", "caller timeout on a downstream call", 1e-6,
          86400},
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
        {{"state_0", MetricSpec::Kind::gauge,
          "breaker of downstream 0: 0 closed, 1 open, 2 half-open"},
         {"state_1", MetricSpec::Kind::gauge,
          "breaker of downstream 1: 0 closed, 1 open, 2 half-open"},
         {"transitions", MetricSpec::Kind::counter, "breaker state changes"},
         {"connections_in_use", MetricSpec::Kind::gauge, "caller connections held by calls"},
         {"short_circuited", MetricSpec::Kind::counter,
          "requests failed fast by an open breaker"}}};
    return info;
  }

  std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                Context& ctx) const override {
    if (variant == "none") return std::make_unique<Caller>(false, false, params, ctx);
    if (variant == "breaker") return std::make_unique<Caller>(true, false, params, ctx);
    if (variant == "bulkhead") return std::make_unique<Caller>(false, true, params, ctx);
    if (variant == "breaker_bulkhead") return std::make_unique<Caller>(true, true, params, ctx);
    throw std::invalid_argument("unknown variant " + variant);
  }
};

}  // namespace

HLDLAB_PLUGIN(CircuitBreaker)
