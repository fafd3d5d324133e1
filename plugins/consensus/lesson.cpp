// Consensus: how long a Raft cluster stays without a leader after the leader crashes.
//
//   election:  follower hears nothing for its election timeout -> candidate: term += 1, votes
//              for itself, RequestVote(term) to all; a node grants one vote per term; a
//              majority makes a leader, which sends heartbeats every `heartbeat`
//   problem:   fixed timeout (150-150 ms): after the crash the followers' timers expire within
//              a network delay of each other, several become candidates in the same term and
//              split the votes; they all retry after the same 150 ms and split again
//   fix:       randomized timeout in [min, max] (Raft: 150-300 ms): usually one node times out
//              first and collects a majority before anyone else wakes up; the wider the range,
//              the fewer split votes (Ongaro and Ousterhout 2014, figure 16)
//   clients:   commands go to the leader; without one they wait (up to client_timeout)
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"
#include "raft.hpp"

namespace {
using namespace hldlab;

/// A client command, waiting for a leader or in service. Events refer to it by (slot,
/// generation) so that a stale event (the timeout of a command already served) is ignored.
struct Command {
  Request request;
  std::uint32_t generation = 0;
};

/// A trial without a leader this long after the crash is abandoned (and counted as no_leader).
constexpr Time kGiveUp = seconds(600);

struct TrialStats {
  std::int64_t trials = 0, split_votes = 0, no_leader = 0;
  double mean_ms = 0, p99_ms = 0, max_ms = 0;
};

class Consensus final : public System {
 public:
  Consensus(const raft::Config& config, const Params& p, Context& ctx)
      : config_(config),
        ctx_(ctx),
        client_timeout_(p.duration("client_timeout")),
        cluster_(config, ctx.rng().next()),
        leaderless_metric_(ctx.metric("leaderless_seconds")),
        elections_metric_(ctx.metric("elections")) {
    wake();
  }

  void handle(const Request& r) override {
    const std::uint32_t slot = acquire(r);
    if (cluster_.leader() >= 0) return serve(slot);
    // No leader: the command waits for one, up to client_timeout.
    queue_.emplace_back(slot, slots_[slot].generation);
    ctx_.after(client_timeout_, [this, slot, generation = slots_[slot].generation] {
      if (slots_[slot].generation != generation) return;  // served meanwhile
      ctx_.complete(slots_[slot].request, Outcome::timeout);
      release(slot);
    });
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault != "crash_leader") return;
    catch_up();
    const int crashed = cluster_.crash_leader();
    if (crashed < 0) return ctx_.log("crash_leader: no leader to crash right now");
    crash_time_ = ctx_.now();
    ctx_.after(p["restart_after"].as_int(), [this, crashed] {
      catch_up();
      cluster_.restart(crashed);
      schedule_wake();
    });
    schedule_wake();
  }

  Value call(const std::string& op, const Value& args) override {
    if (op != "elections") throw std::invalid_argument("unknown operation '" + op + "'");
    trials_ = run_trials(args["trials"].as_int(), args["settle"].as_int());
    elections_metric_.add(static_cast<double>(trials_.trials));
    return Map{{"trials", trials_.trials},           {"mean_ms", trials_.mean_ms},
               {"p99_ms", trials_.p99_ms},           {"max_ms", trials_.max_ms},
               {"split_votes", trials_.split_votes}, {"no_leader", trials_.no_leader}};
  }

  Map figures() const override {
    return {{"elections", trials_.trials},
            {"elect_mean_ms", trials_.mean_ms},
            {"elect_p99_ms", trials_.p99_ms},
            {"elect_max_ms", trials_.max_ms},
            {"split_votes", trials_.split_votes},
            {"leaderless_ms",
             to_milliseconds(leaderless_ + (crash_time_ >= 0 ? ctx_.now() - crash_time_ : 0))}};
  }

 private:
  /// The measurement behind Raft's figure 16: crash the leader of a stable cluster, time until
  /// a new one is elected, restart the old one, let it settle, repeat. Runs on its own cluster
  /// and clock, seeded from this system's random stream.
  TrialStats run_trials(std::int64_t trials, Time settle) {
    raft::Cluster c(config_, ctx_.rng().next());
    std::vector<double> times;
    TrialStats s;
    c.run_until(settle);
    for (std::int64_t t = 0; t < trials; ++t) {
      // Normally the leader of the last trial is still in office; should it have stepped down
      // meanwhile, wait for its successor.
      const Time waiting_since = c.now();
      while (c.leader() < 0 && c.next_time() <= waiting_since + kGiveUp) c.step();
      if (c.leader() < 0) {
        ++s.no_leader;
        break;
      }
      const int old = c.crash_leader();
      const std::uint64_t old_term = c.node(old).term;
      const Time crashed_at = c.now();
      while (c.leader() < 0 && c.next_time() <= crashed_at + kGiveUp) c.step();
      if (c.leader() < 0) {  // e.g. zero network delay and fixed timeouts: split forever
        ++s.no_leader;
        break;
      }
      times.push_back(to_milliseconds(c.elected_at() - crashed_at));
      s.split_votes += static_cast<std::int64_t>(c.term() - old_term - 1);
      c.restart(old);
      c.run_until(c.now() + settle);
    }
    s.trials = static_cast<std::int64_t>(times.size());
    if (times.empty()) return s;
    double sum = 0;
    for (double v : times) sum += v;
    s.mean_ms = sum / static_cast<double>(times.size());
    std::sort(times.begin(), times.end());
    s.max_ms = times.back();
    const auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(times.size())));
    s.p99_ms = times[std::max<std::size_t>(rank, 1) - 1];
    return s;
  }

  /// The leader runs the command and replicates it to a majority: its own work plus one round
  /// trip at the mean network delay.
  void serve(std::uint32_t slot) {
    ++slots_[slot].generation;  // cancels the wait timeout, if any
    const Time rtt = config_.delay_min + config_.delay_max;
    ctx_.after(slots_[slot].request.service + rtt,
               [this, slot, generation = slots_[slot].generation] {
                 if (slots_[slot].generation != generation) return;
                 ctx_.complete(slots_[slot].request, Outcome::ok);
                 release(slot);
               });
  }

  std::uint32_t acquire(const Request& r) {
    std::uint32_t slot;
    if (free_.empty()) {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    slots_[slot].request = r;
    return slot;
  }

  void release(std::uint32_t slot) {
    ++slots_[slot].generation;
    free_.push_back(slot);
  }

  /// Run the cluster's events up to now, noting leader changes.
  void catch_up() {
    while (cluster_.next_time() <= ctx_.now()) {
      const bool had = cluster_.leader() >= 0;
      cluster_.step();
      if (!had && cluster_.leader() >= 0) elected();
    }
    cluster_.advance_to(ctx_.now());
  }

  void elected() {
    if (crash_time_ >= 0) {
      ctx_.log("leader " + std::to_string(cluster_.leader()) + " elected in term " +
               std::to_string(cluster_.term()) + ", " +
               std::to_string(to_milliseconds(cluster_.now() - crash_time_)) +
               " ms after the crash");
      leaderless_ += cluster_.now() - crash_time_;
      leaderless_metric_.add(to_seconds(cluster_.now() - crash_time_));
      crash_time_ = -1;
    }
    // Waiting commands whose timeout has not fired yet are served now.
    for (const auto& [slot, generation] : queue_)
      if (slots_[slot].generation == generation) serve(slot);
    queue_.clear();
  }

  void wake() {
    catch_up();
    schedule_wake();
  }
  void schedule_wake() {
    const Time next = cluster_.next_time();
    if (next == std::numeric_limits<Time>::max() || next >= wake_at_) return;
    wake_at_ = next;
    ctx_.after(next - ctx_.now(), [this, next] {
      if (next != wake_at_) return;  // an earlier wake-up took over
      wake_at_ = std::numeric_limits<Time>::max();
      wake();
    });
  }

  raft::Config config_;
  Context& ctx_;
  Time client_timeout_;
  raft::Cluster cluster_;
  Metric& leaderless_metric_;
  Metric& elections_metric_;
  std::vector<Command> slots_;
  std::vector<std::uint32_t> free_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> queue_;  // (slot, generation) waiting
  Time wake_at_ = std::numeric_limits<Time>::max();
  Time crash_time_ = -1, leaderless_ = 0;
  TrialStats trials_;
};

class ConsensusLesson final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const LessonInfo info{
        "consensus",
        "Consensus: Raft leader election with fixed vs randomized timeouts",
        "With the same election timeout everywhere, the followers of a crashed leader time out "
        "within a network delay of each other, several stand in the same term and split the "
        "votes; they retry after the same timeout and split again. The cluster can stay "
        "without a leader, unable to take commands, for many rounds.",
        "Randomize each election timeout in a range (Raft: 150-300 ms). One follower usually "
        "times out well before the others and wins the majority before anyone else stands. "
        "Even 5 ms of randomness helps; a range wider than the network delay removes almost "
        "all split votes.",
        {"etcd / Kubernetes (election-timeout randomized in [T, 2T))", "Consul and Nomad (Raft)",
         "CockroachDB and TiKV (Multi-Raft)", "Kafka KRaft controller quorum"},
        {{"fixed", true, "every node uses election_timeout_min exactly"},
         {"randomized", false, "each timeout drawn uniformly in [election_timeout_min, max]"}},
        {{"nodes", ParamType::integer, 5, "cluster size", 3, 99},
         {"election_timeout_min", ParamType::duration, "150ms", "lower end of the timeout", 1e-3,
          60},
         {"election_timeout_max", ParamType::duration, "300ms",
          "upper end of the timeout (randomized only)", 1e-3, 60},
         {"heartbeat", ParamType::duration, "50ms", "leader heartbeat interval", 1e-4, 60},
         {"delay_min", ParamType::duration, "1ms", "one-way network delay, lower end (uniform)", 0,
          10},
         {"delay_max", ParamType::duration, "10ms", "one-way network delay, upper end", 0, 10},
         {"timer_jitter", ParamType::duration, "0.5ms",
          "a timer fires up to this late (scheduling noise; 0 makes fixed timeouts livelock)", 0,
          1},
         {"client_timeout", ParamType::duration, "1s",
          "how long a command waits for a leader before timing out", 1e-3, 3600}},
        {{"crash_leader",
          "the current leader crashes; it restarts as a follower after restart_after",
          {{"restart_after", ParamType::duration, "5s", "downtime of the crashed node", 0, 3600}}}},
        {{"elections",
          "run `trials` crash/elect cycles on a private copy of the cluster; returns "
          "{trials, mean_ms, p99_ms, max_ms, split_votes, no_leader} and fills the elect_* figures",
          {{"trials", ParamType::integer, 1000, "crash/elect cycles", 1, 1e6},
           {"settle", ParamType::duration, "1s",
            "stable time between a new leader and the next crash", 0.05, 60}}}},
        {{"leaderless_seconds", MetricSpec::Kind::counter, "time without a leader after crashes"},
         {"elections", MetricSpec::Kind::counter,
          "elections measured by the elections operation"}}};
    return info;
  }

  std::unique_ptr<System> build(const std::string& variant, const Params& p,
                                Context& ctx) const override {
    raft::Config c;
    c.nodes = static_cast<int>(p.integer("nodes"));
    c.timeout_min = p.duration("election_timeout_min");
    c.timeout_max = p.duration("election_timeout_max");
    c.heartbeat = p.duration("heartbeat");
    c.delay_min = p.duration("delay_min");
    c.delay_max = p.duration("delay_max");
    c.timer_jitter = p.duration("timer_jitter");
    if (variant == "fixed")
      c.timeout_max = c.timeout_min;
    else if (variant != "randomized")
      throw std::invalid_argument("unknown variant " + variant);
    if (c.timeout_max < c.timeout_min)
      throw std::invalid_argument("election_timeout_max must be at least election_timeout_min");
    if (c.delay_max < c.delay_min)
      throw std::invalid_argument("delay_max must be at least delay_min");
    if (c.heartbeat >= c.timeout_min)
      throw std::invalid_argument("heartbeat must be shorter than election_timeout_min");
    return std::make_unique<Consensus>(c, p, ctx);
  }
};

}  // namespace

HLDLAB_PLUGIN(ConsensusLesson)
