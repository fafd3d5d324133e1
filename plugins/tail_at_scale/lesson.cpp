// The tail at scale: a request that fans out to N leaves waits for the slowest one.
//
//   problem:  request -> `depth` services in a chain (one network hop each, each up with
//                        probability a) -> fan out to N leaves, wait for all of them
//             a leaf call is slow (a GC pause, a compaction, a busy queue) with probability p,
//             so the request is slow with probability 1 - (1 - p)^N: 1 % per leaf is 10 % of
//             requests at N = 10 (Dean & Barroso, "The Tail at Scale", CACM 2013); the chain
//             answers with probability a^depth, where one process answers with probability a
//   fixes:    hedged:  no reply after hedge_after (about the leaf P95)? send a second copy to
//                      another replica, take the first reply, cancel the other (about 5 % more
//                      calls)
//             tied:    enqueue the call on two replicas at once; the first to start tells the
//                      other to drop it (both run only when they start within the cancel delay)
//             partial: answer at a deadline with the leaves that replied (completeness < 1)
//   and:      a client that caches the service registry for a TTL keeps calling a dead replica
//             until the TTL runs out; health-checked discovery stops within one check interval
//
// Model: no shared queue, so every leaf call is a pure function of its draws (common random
// numbers: copy c of leaf i of request r draws the same in every variant) and the whole request
// is computed when it arrives; one event completes it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/lognormal_durations.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Mode { fan_out, monolith, hedged, tied, partial };

/// One copy of a leaf call, times relative to the start of the fan-out.
struct Copy {
  bool sent = false;
  bool dead = false;  // sent to a dead replica: fails one hop later
  bool slow = false;  // drew the slow wait
  Time start = 0;     // starts running on its replica
  Time finish = 0;    // its work is done
  Time reply = 0;     // the client has its reply (or its failure)
  Time service = 0;   // its work
  bool runs = true;   // tied: false when the other copy's cancel came before it started
};

/// What a leaf call gives the request.
struct Leaf {
  bool ok = false;
  Time done = 0;  // reply of the winning copy, or failure time
};

struct InFlight {
  Request request;
  Outcome outcome = Outcome::ok;
};

class TailSystem final : public System {
 public:
  TailSystem(Mode mode, const Params& p, Context& ctx)
      : mode_(mode),
        ctx_(ctx),
        leaves_(p.integer<int>("leaves")),
        replicas_(p.integer<int>("replicas")),
        depth_(p.integer<int>("depth")),
        slow_probability_(p.real("slow_probability")),
        availability_(p.real("availability")),
        hop_(p.duration("hop")),
        in_process_call_(p.duration("in_process_call")),
        slow_wait_(p.duration("slow_wait")),
        wait_mean_(static_cast<double>(p.duration("wait_mean"))),
        hedge_after_(p.duration("hedge_after")),
        deadline_(p.duration("deadline")),
        slow_threshold_(p.duration("slow_threshold")),
        health_checked_(p.string("discovery") == "health_checked"),
        refresh_every_(health_checked_ ? p.duration("health_check_interval")
                                       : p.duration("registry_ttl")),
        copy_salt_(ctx.salt("leaf copy")),
        chain_salt_(ctx.salt("chain availability")),
        replica_salt_(ctx.salt("replica choice")),
        slow_metric_(ctx.metric("slow_requests")),
        extra_metric_(ctx.metric("extra_copies")),
        dead_metric_(ctx.metric("calls_to_dead")),
        missing_metric_(ctx.metric("missing_leaves")) {
    service_ = lognormal_durations(p, "service");
    replica_dead_.assign(static_cast<std::size_t>(replicas_), false);
    replica_known_dead_at_.assign(static_cast<std::size_t>(replicas_), kNever);
    view_.reserve(static_cast<std::size_t>(replicas_));
    leaf_results_.resize(static_cast<std::size_t>(leaves_));
  }

  void handle(const Request& r) override {
    ++requests_;
    Outcome outcome = Outcome::ok;
    const Time latency = serve(r, outcome);
    if (latency > slow_threshold_) {
      ++slow_requests_;
      slow_metric_.add(1);
    }
    const SlotHandle h = in_flight_.acquire();
    in_flight_[h] = {r, outcome};
    ctx_.after(latency, [this, h] {
      ctx_.complete(in_flight_[h].request, in_flight_[h].outcome);
      in_flight_.release(h);
    });
  }

  void inject(const std::string& fault, const Value& params) override {
    if (fault != "kill_replica") return;
    const std::int64_t replica = params.as_map().at("replica").as_int();
    if (replica >= replicas_)
      throw std::invalid_argument("kill_replica: replica " + std::to_string(replica) +
                                  " does not exist (replicas = " + std::to_string(replicas_) + ")");
    const auto index = static_cast<std::size_t>(replica);
    if (replica_dead_[index]) return;
    replica_dead_[index] = true;
    // The client's view learns it at the next registry refresh (TTL) or health check.
    replica_known_dead_at_[index] = (ctx_.now() / refresh_every_ + 1) * refresh_every_;
    ctx_.log("replica " + std::to_string(replica) +
             " of every leaf died; the client learns it at " +
             std::to_string(to_seconds(replica_known_dead_at_[index])) + " s");
  }

  Map figures() const override {
    const auto share = [](double part, double whole) { return whole > 0 ? part / whole : 0.0; };
    return {
        {"slow_requests", slow_requests_},
        {"slow_share", share(static_cast<double>(slow_requests_), static_cast<double>(requests_))},
        {"slow_leaf_calls", slow_leaf_calls_},
        {"leaf_calls", leaf_calls_},
        {"leaf_p95", to_seconds(leaf_latency_.quantile(0.95))},
        {"extra_copies",
         share(static_cast<double>(extra_copies_), static_cast<double>(leaf_calls_))},
        {"extra_work",
         share(static_cast<double>(losing_work_), static_cast<double>(winning_work_))},
        {"completeness",
         share(static_cast<double>(leaves_answered_), static_cast<double>(leaves_asked_))},
        {"calls_to_dead", calls_to_dead_},
        {"chain_errors", chain_errors_}};
  }

  void reset_stats() override {
    requests_ = slow_requests_ = slow_leaf_calls_ = leaf_calls_ = extra_copies_ = 0;
    leaves_answered_ = leaves_asked_ = calls_to_dead_ = chain_errors_ = 0;
    losing_work_ = winning_work_ = 0;
    leaf_latency_.reset();
  }

 private:
  static constexpr Time kNever = std::numeric_limits<Time>::max();

  /// The latency of request `r`, and its outcome.
  Time serve(const Request& r, Outcome& outcome) {
    // The chain of services in front of the fan-out: network hops, or calls inside one process.
    const bool in_process = mode_ == Mode::monolith;
    const int processes = in_process ? 1 : depth_;
    const Time call = in_process ? in_process_call_ : hop_;
    for (int k = 0; k < processes; ++k) {
      if (Rng::uniform_at(chain_salt_, r.id, static_cast<std::uint64_t>(k)) >= availability_) {
        ++chain_errors_;
        outcome = Outcome::error;
        return in_process ? call * depth_ : call * (k + 1);
      }
    }
    const Time chain = call * depth_;
    update_view();
    for (int i = 0; i < leaves_; ++i) leaf_results_[static_cast<std::size_t>(i)] = call_leaf(r, i);
    return chain + gather(outcome);
  }

  /// Combine the leaves' results: wait for all (or until the deadline).
  Time gather(Outcome& outcome) {
    Time all_done = 0, first_failure = kNever;
    for (const Leaf& leaf : leaf_results_) {
      if (leaf.ok)
        all_done = std::max(all_done, leaf.done);
      else
        first_failure = std::min(first_failure, leaf.done);
    }
    leaves_asked_ += leaves_;
    if (mode_ == Mode::partial) {
      Time last = 0;  // every leaf has replied or failed
      for (const Leaf& leaf : leaf_results_) last = std::max(last, leaf.done);
      const Time answer = std::min(last, deadline_);
      std::int64_t in_time = 0;
      for (const Leaf& leaf : leaf_results_)
        if (leaf.ok && leaf.done <= answer) ++in_time;
      leaves_answered_ += in_time;
      missing_metric_.add(static_cast<double>(leaves_ - in_time));
      return answer;
    }
    if (first_failure != kNever) {
      outcome = Outcome::error;
      return first_failure;
    }
    leaves_answered_ += leaves_;
    return all_done;
  }

  /// The replicas the client believes alive, from its registry view.
  void update_view() {
    view_.clear();
    for (int j = 0; j < replicas_; ++j)
      if (ctx_.now() < replica_known_dead_at_[static_cast<std::size_t>(j)]) view_.push_back(j);
  }

  /// Draw copy `copy` of leaf `leaf` of request `r`, sent at `sent` to `replica`.
  Copy draw_copy(const Request& r, int leaf, int copy, Time sent, int replica) {
    Copy c;
    c.sent = true;
    if (replica_dead_[static_cast<std::size_t>(replica)]) {
      c.dead = true;
      c.reply = sent + hop_;  // connection refused
      ++calls_to_dead_;
      dead_metric_.add(1);
      return c;
    }
    Rng g(
        Rng::hash(Rng::hash(copy_salt_ ^ r.id) ^ static_cast<std::uint64_t>(leaf * 2 + copy + 1)));
    c.slow = g.uniform() < slow_probability_;
    const Time wait = c.slow ? slow_wait_ : round_time(g.exponential(wait_mean_));
    c.service = service_.sample_time(g);
    c.start = sent + hop_ / 2 + wait;
    c.finish = c.start + c.service;
    c.reply = c.finish + (hop_ - hop_ / 2);
    return c;
  }

  Leaf call_leaf(const Request& r, int leaf) {
    ++leaf_calls_;
    if (view_.empty()) return {false, 0};  // every replica is known dead: no call at all
    const std::size_t first =
        Rng::hash(replica_salt_ ^ Rng::hash(r.id) ^ static_cast<std::uint64_t>(leaf)) %
        view_.size();
    const int primary = view_[first];
    const int backup = view_.size() > 1 ? view_[(first + 1) % view_.size()] : -1;
    Copy copies[2];
    copies[0] = draw_copy(r, leaf, 0, 0, primary);
    if (copies[0].slow) ++slow_leaf_calls_;
    if (backup >= 0 && mode_ == Mode::hedged) {
      // No reply by hedge_after (or a failure before): a second copy to the other replica.
      const Time hedge_at = copies[0].dead ? copies[0].reply : hedge_after_;
      if (copies[0].dead || copies[0].reply > hedge_after_)
        copies[1] = draw_copy(r, leaf, 1, hedge_at, backup);
    }
    if (backup >= 0 && mode_ == Mode::tied) {
      copies[1] = draw_copy(r, leaf, 1, 0, backup);
      // The first copy to start sends a cancel to the other, which arrives one way later.
      if (!copies[0].dead && !copies[1].dead) {
        const int first_start = copies[1].start < copies[0].start ? 1 : 0;
        Copy& other = copies[1 - first_start];
        if (other.start >= copies[first_start].start + hop_ / 2) other.runs = false;
      }
    }
    const int extra = copies[1].sent ? 1 : 0;
    extra_copies_ += extra;
    extra_metric_.add(extra);
    // The first successful reply wins; the client then cancels the other copy (one way).
    int winner = -1;
    for (int c = 0; c < 2; ++c) {
      const Copy& k = copies[c];
      if (k.sent && !k.dead && k.runs && (winner < 0 || k.reply < copies[winner].reply)) winner = c;
    }
    if (winner < 0) {
      Time failed = 0;
      for (const Copy& k : copies)
        if (k.sent) failed = std::max(failed, k.reply);
      return {false, failed};
    }
    const Copy& won = copies[winner];
    winning_work_ += won.service;
    const Copy& lost = copies[1 - winner];
    if (lost.sent && !lost.dead && lost.runs) {
      const Time cancelled = won.reply + hop_ / 2;
      losing_work_ +=
          std::clamp<Time>(std::min(lost.finish, cancelled) - lost.start, 0, lost.service);
    }
    if (!copies[0].dead) leaf_latency_.record(copies[0].reply);
    return {true, won.reply};
  }

  Mode mode_;
  Context& ctx_;
  int leaves_, replicas_, depth_;
  double slow_probability_, availability_;
  Time hop_, in_process_call_, slow_wait_;
  double wait_mean_;
  Time hedge_after_, deadline_, slow_threshold_;
  bool health_checked_;
  Time refresh_every_;
  std::uint64_t copy_salt_, chain_salt_, replica_salt_;
  Distribution service_;
  Metric& slow_metric_;
  Metric& extra_metric_;
  Metric& dead_metric_;
  Metric& missing_metric_;
  std::vector<bool> replica_dead_;
  std::vector<Time> replica_known_dead_at_;
  std::vector<int> view_;
  std::vector<Leaf> leaf_results_;
  SlotPool<InFlight> in_flight_;
  Histogram leaf_latency_;  // primary copies' reply times
  std::int64_t requests_ = 0, slow_requests_ = 0, slow_leaf_calls_ = 0, leaf_calls_ = 0;
  std::int64_t extra_copies_ = 0, leaves_answered_ = 0, leaves_asked_ = 0;
  std::int64_t calls_to_dead_ = 0, chain_errors_ = 0;
  Time losing_work_ = 0, winning_work_ = 0;
};

LessonInfo info() {
  return {
      "tail_at_scale",
      "The tail at scale: fan-out amplifies rare slowness; hedged, tied and partial answers",
      "A request fans out to N leaves and waits for all of them. A leaf is slow with a small "
      "probability p, but the request is slow when any leaf is: 1 - (1 - p)^N, 10 % of requests "
      "for p = 1 % and N = 10. Splitting a monolith into a chain of services adds a network hop "
      "per service and multiplies availabilities: a^depth. A client that caches the service "
      "registry keeps calling a dead replica until the cache expires.",
      "Hedged requests: send a second copy to another replica when the first has not answered "
      "by about the leaf P95, and take the first answer (about 5 % more calls). Tied requests: "
      "enqueue on two replicas, the first to start cancels the other. Partial results: answer "
      "at a deadline with the leaves that replied. Health-checked discovery drops a dead replica "
      "within one check interval.",
      {"Google web search and BigTable: hedged and tied requests (Dean & Barroso, The Tail at "
       "Scale, CACM 2013)",
       "gRPC hedging policy (gRFC A6: hedgingDelay, maxAttempts)",
       "Envoy / Linkerd request hedging and per-try timeouts",
       "Elasticsearch partial results (allow_partial_search_results), Consul / Eureka "
       "health-checked discovery vs cached registries"},
      {{"fan_out", true, "microservices: a chain of network hops, then wait for every leaf"},
       {"monolith", false,
        "the chain as in-process calls of one process, then wait for every leaf"},
       {"hedged", false, "a second copy to another replica after hedge_after; first reply wins"},
       {"tied", false, "a copy on two replicas at once; the first to start cancels the other"},
       {"partial", false, "answer at the deadline with the leaves that replied"}},
      {{"leaves", ParamType::integer, 10, "leaves a request fans out to (N)", 1, 10000},
       {"replicas", ParamType::integer, 2, "replicas of each leaf (hedged and tied use two)", 1,
        16},
       {"slow_probability", ParamType::real, 0.01,
        "probability that a leaf call waits slow_wait before it runs (p)", 0, 1},
       {"slow_wait", ParamType::duration, "1s",
        "the wait of a slow leaf call (a GC pause, a busy queue)", 0, 3600},
       {"wait_mean", ParamType::duration, "2ms",
        "mean queueing wait of a normal call (exponential)", 0, 3600},
       {"service_median", ParamType::duration, "4ms", "median work of a leaf call (lognormal)",
        1e-9, 3600},
       {"service_p99", ParamType::duration, "12ms", "99th percentile of a leaf call's work", 1e-9,
        3600},
       {"hop", ParamType::duration, "1ms", "network round trip of one call between services", 0,
        3600},
       {"depth", ParamType::integer, 4, "services in the chain before the fan-out", 0, 1000},
       {"availability", ParamType::real, 0.999,
        "probability that one service (or the monolith) answers a request", 0, 1},
       {"in_process_call", ParamType::duration, "1us", "cost of a call inside the monolith", 0,
        3600},
       {"hedge_after", ParamType::duration, "14ms",
        "hedged: send the second copy after this (default about the leaf P95)", 0, 3600},
       {"deadline", ParamType::duration, "50ms", "partial: answer at this time after the fan-out",
        0, 3600},
       {"slow_threshold", ParamType::duration, "250ms",
        "a request slower than this counts in slow_requests", 0, 3600},
       {"discovery",
        ParamType::string,
        "registry_cache",
        "how the client learns a replica died: registry_cache (after registry_ttl) or "
        "health_checked (after health_check_interval)",
        -1e300,
        1e300,
        {"registry_cache", "health_checked"}},
       {"registry_ttl", ParamType::duration, "30s", "how long the client caches the registry", 1e-6,
        86400},
       {"health_check_interval", ParamType::duration, "1s", "time between health checks", 1e-6,
        86400}},
      {{"kill_replica",
        "replica `replica` of every leaf dies: calls to it fail after one hop until the client's "
        "view drops it (next registry refresh or health check)",
        {{"replica", ParamType::integer, 0, "which replica of each leaf dies", 0, 15}}}},
      {},
      {{"slow_requests", MetricSpec::Kind::counter, "requests slower than slow_threshold"},
       {"extra_copies", MetricSpec::Kind::counter,
        "leaf-call copies beyond the first (hedges, ties)"},
       {"calls_to_dead", MetricSpec::Kind::counter, "leaf calls sent to a dead replica"},
       {"missing_leaves", MetricSpec::Kind::counter, "leaves left out of partial answers"}},
      {{"slow_requests", Unit::count, "requests slower than slow_threshold"},
       {"slow_share", Unit::fraction, "slow_requests / requests"},
       {"slow_leaf_calls", Unit::count, "first copies of leaf calls that drew the slow wait"},
       {"leaf_calls", Unit::count, "leaf calls (one per leaf per request past the chain)"},
       {"leaf_p95", Unit::seconds, "95th percentile of a first copy's reply time"},
       {"extra_copies", Unit::fraction, "copies beyond the first per leaf call: the extra load"},
       {"extra_work", Unit::fraction, "work of losing copies / work of winning copies"},
       {"completeness", Unit::fraction, "leaf results in the answers / leaf results asked"},
       {"calls_to_dead", Unit::count, "leaf calls sent to a dead replica"},
       {"chain_errors", Unit::count, "requests failed because a service of the chain was down"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Mode> modes[] = {{"fan_out", Mode::fan_out},
                                                       {"monolith", Mode::monolith},
                                                       {"hedged", Mode::hedged},
                                                       {"tied", Mode::tied},
                                                       {"partial", Mode::partial}};
  return std::make_unique<TailSystem>(variant_value(variant, modes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
