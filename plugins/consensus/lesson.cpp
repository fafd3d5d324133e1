// Consensus: how long a Raft cluster stays without a leader after the leader crashes.
//
//   election:  follower hears nothing for its election timeout -> candidate: term += 1, votes
//              for itself, RequestVote(term, log length) to all; a node grants one vote per
//              term, and only to a candidate whose log is at least as long as its own; a
//              majority makes a leader, which broadcasts heartbeats every `heartbeat`
//   problem:   fixed timeout (150-150 ms): the followers heard the last heartbeat together, so
//              their timers expire within a fraction of a millisecond, before any RequestVote
//              arrives; several become candidates in the same term and split the votes; they
//              all retry after the same 150 ms and split again
//   fix:       randomized timeout in [min, max] (Raft: 150-300 ms): usually one node times out
//              first and collects a majority before anyone else wakes up; the wider the range,
//              the fewer split votes (Ongaro and Ousterhout 2014, figure 16)
//   clients:   commands go to the leader; without one they wait (up to client_timeout)
#include <algorithm>
#include <string>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Role : std::uint8_t { follower, candidate, leader };

struct Node {
  bool alive = true;
  Role role = Role::follower;
  std::uint64_t term = 1;
  int voted_for = 0;     // in `term`
  int votes = 0;         // as a candidate in `term`
  std::int64_t log = 0;  // log length: votes go only to candidates whose log is as long
  EventId election_timer;
};

/// RequestVote, its reply, or AppendEntries (a heartbeat), in flight.
struct Message {
  enum class Kind : std::uint8_t { request_vote, vote, append_entries };
  std::uint64_t term;
  std::int64_t log;  // request_vote: the candidate's log length; append_entries: the leader's
  std::int16_t from, to;
  Kind kind;
  bool granted;
};

/// A client command, waiting for a leader (with its timeout) or in service.
struct Command {
  Request request;
  EventId timeout;
};

struct Config {
  int nodes;
  Distribution timeout, delay, timer_jitter;
  Time heartbeat, disk_write, client_timeout;
  bool unequal_logs;
};

/// A series of crash/elect trials (the elections operation).
struct TrialSeries {
  std::int64_t left = 0;
  Time settle = 0, give_up = 0;
  bool crash_armed = false;  // crash at a random point of the leader's next heartbeat interval
  bool running = false;      // a crashed leader's successor is being awaited
  int crashed = -1;          // ... and the crashed leader restarts once it is elected
  EventId give_up_event;
};

class Consensus final : public System {
 public:
  Consensus(const Config& config, Context& ctx)
      : config_(config),
        ctx_(ctx),
        nodes_(static_cast<std::size_t>(config.nodes)),
        leaderless_metric_(ctx.metric("leaderless_seconds")),
        elections_metric_(ctx.metric("elections")) {
    // Bootstrap: node 0 leads term 1; the others heard from it at time 0.
    for (int i = 1; i < size(); ++i) reset_timer(i);
    become_leader(0);
  }

  void handle(const Request& r) override {
    const SlotHandle h = commands_.acquire();
    commands_[h].request = r;
    if (leader_ >= 0) return serve(h);
    commands_[h].timeout = ctx_.after(config_.client_timeout, [this, h] {
      ctx_.complete(commands_[h].request, Outcome::timeout);
      commands_.release(h);
    });
    waiting_.push_back(h);
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault != "crash_leader") return;
    const int crashed = crash_leader();
    if (crashed < 0) return ctx_.log("crash_leader: no leader to crash right now");
    ctx_.after(p["restart_after"].as_int(), [this, crashed] { restart(crashed); });
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "elections") {
      if (trials_.left > 0) throw std::logic_error("a series of elections is already running");
      trials_ = TrialSeries{};
      trials_.left = args["trials"].as_int();
      trials_.settle = args["settle"].as_int();
      trials_.give_up = args["give_up"].as_int();
      ctx_.hold();  // the experiment runs until the series ends
      arm_trial();
      return {};
    }
    if (op != "election_times") throw std::invalid_argument("unknown operation '" + op + "'");
    Map out = figures();
    List samples;
    for (double ms : samples_ms_) samples.push_back(ms);
    out["samples_ms"] = samples;
    out["trials_left"] = trials_.left;
    return out;
  }

  Map figures() const override {
    Map out{{"elections", static_cast<std::int64_t>(samples_ms_.size())},
            {"no_leader", no_leader_},
            {"split_votes", split_votes_},
            {"leaderless",
             to_seconds(leaderless_ + (crashed_at_ >= 0 ? ctx_.now() - crashed_at_ : 0))}};
    // A trial that elected nobody has no election time: statistics over the others would
    // hide it.
    if (no_leader_ == 0 && election_times_.count() > 0) {
      out["elect_p50"] = to_seconds(election_times_.quantile(0.5));
      out["elect_mean"] = election_times_.mean() * 1e-9;
      out["elect_p99"] = to_seconds(election_times_.quantile(0.99));
      out["elect_max"] = to_seconds(election_times_.max());
    }
    return out;
  }

  void reset_stats() override {
    election_times_.reset();
    samples_ms_.clear();
    no_leader_ = split_votes_ = 0;
    leaderless_ = 0;
    if (crashed_at_ >= 0) crashed_at_ = ctx_.now();
  }

 private:
  int size() const { return static_cast<int>(nodes_.size()); }
  Node& node(int i) { return nodes_[static_cast<std::size_t>(i)]; }

  // ---- Raft leader election ----

  /// `m` arrives after a network delay, sent `after` from now.
  void send(const Message& m, Time after = 0) {
    const Time sent = ctx_.now() + after;
    ctx_.after(after + config_.delay.sample_time(ctx_.rng()), [this, m, sent] {
      if (ctx_.tracing()) trace(m, sent);
      deliver(m);
    });
  }
  /// The message on the space-time diagram (sys:trace{...}).
  void trace(const Message& m, Time sent) {
    static const char* names[] = {"RequestVote", "Vote", "AppendEntries"};
    std::string label =
        names[static_cast<int>(m.kind)] + std::string(" t=") + std::to_string(m.term);
    if (m.kind == Message::Kind::vote) label += m.granted ? " yes" : " no";
    if (!node(m.to).alive) label += " (lost: node down)";
    ctx_.trace_message(m.from, m.to, sent, label);
  }
  void trace_event(int i, const std::string& what) {
    if (ctx_.tracing()) ctx_.trace_event(i, what + " t=" + std::to_string(node(i).term));
  }
  void broadcast(int from, Message::Kind kind, std::uint64_t term, std::int64_t log) {
    for (int to = 0; to < size(); ++to)
      if (to != from)
        send({term, log, static_cast<std::int16_t>(from), static_cast<std::int16_t>(to), kind,
              false});
  }

  void reset_timer(int i) {
    Node& n = node(i);
    ctx_.cancel(n.election_timer);
    const Time timeout =
        config_.timeout.sample_time(ctx_.rng()) + config_.timer_jitter.sample_time(ctx_.rng());
    n.election_timer = ctx_.after(timeout, [this, i] { time_out(i); });
  }

  /// Election timeout: become a candidate in a new term.
  void time_out(int i) {
    Node& n = node(i);
    n.role = Role::candidate;
    ++n.term;
    n.voted_for = i;
    n.votes = 1;
    candidacies_.push_back(n.term);
    trace_event(i, "candidate");
    reset_timer(i);
    broadcast(i, Message::Kind::request_vote, n.term, n.log);
  }

  void become_leader(int i) {
    Node& n = node(i);
    n.role = Role::leader;
    ctx_.cancel(n.election_timer);
    leader_ = i;
    trace_event(i, "leader");
    if (crashed_at_ >= 0) elected();
    // Waiting commands whose timeout has not fired yet are served now.
    for (const SlotHandle h : waiting_)
      if (commands_.live(h)) {
        ctx_.cancel(commands_[h].timeout);
        serve(h);
      }
    waiting_.clear();
    heartbeat(i);
  }

  void heartbeat(int i) {
    const Node& n = node(i);
    broadcast(i, Message::Kind::append_entries, n.term, n.log);
    heartbeat_ = ctx_.after(config_.heartbeat, [this, i] { heartbeat(i); });
    if (trials_.crash_armed) {  // the next trial: crash uniformly within this interval
      trials_.crash_armed = false;
      ctx_.after(
          Distribution::uniform(0, static_cast<double>(config_.heartbeat)).sample_time(ctx_.rng()),
          [this] { crash_for_trial(); });
    }
  }

  /// A higher term seen: step down to follower in that term.
  void observe(int i, std::uint64_t term) {
    Node& n = node(i);
    if (term <= n.term) return;
    n.term = term;
    n.voted_for = -1;
    if (n.role == Role::leader) {  // a leader runs no election timer
      ctx_.cancel(heartbeat_);
      leader_ = -1;
      reset_timer(i);
    }
    n.role = Role::follower;
  }

  void deliver(const Message& m) {
    Node& n = node(m.to);
    if (!n.alive) return;  // a crashed node hears nothing
    switch (m.kind) {
      case Message::Kind::request_vote: {
        observe(m.to, m.term);
        const bool grant =
            m.term == n.term && (n.voted_for < 0 || n.voted_for == m.from) && m.log >= n.log;
        if (grant) {
          n.voted_for = m.from;
          reset_timer(m.to);
        }
        // The answer leaves once the term and vote are on disk.
        return send({n.term, 0, m.to, m.from, Message::Kind::vote, grant}, config_.disk_write);
      }
      case Message::Kind::vote:
        observe(m.to, m.term);
        if (n.role == Role::candidate && m.granted && m.term == n.term && ++n.votes > size() / 2)
          become_leader(m.to);
        return;
      case Message::Kind::append_entries:
        if (m.term < n.term) return;  // a stale leader (its reply would make it step down)
        observe(m.to, m.term);
        n.role = Role::follower;
        n.log = m.log;  // the leader brings the follower's log in line with its own
        return reset_timer(m.to);
    }
  }

  /// Crash the current leader (if any); returns its index or -1. With unequal_logs the
  /// survivors' logs get distinct lengths in a new random order (the leader had replicated
  /// its last entries to some of them only), so the shortest logs cannot win.
  int crash_leader() {
    const int crashed = leader_;
    if (crashed < 0) return -1;
    Node& n = node(crashed);
    n.alive = false;
    n.role = Role::follower;
    ctx_.cancel(heartbeat_);
    leader_ = -1;
    crashed_at_ = ctx_.now();
    trace_event(crashed, "crash");
    candidacies_.clear();
    if (config_.unequal_logs) {
      std::vector<int> order;  // survivors in a random order (Fisher-Yates)
      for (int i = 0; i < size(); ++i)
        if (i != crashed) order.push_back(i);
      for (std::size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[ctx_.rng().below(i)]);
      for (std::size_t rank = 0; rank < order.size(); ++rank)
        node(order[rank]).log = n.log + static_cast<std::int64_t>(rank);
      n.log += size();
    }
    return crashed;
  }

  /// A crashed node comes back as a follower; term and vote are persistent state in Raft.
  void restart(int i) {
    Node& n = node(i);
    if (n.alive) return;
    n.alive = true;
    trace_event(i, "restart");
    reset_timer(i);
  }

  // ---- measurement ----

  /// Terms in which two or more candidates stood since the crash.
  std::int64_t split_votes() {
    std::sort(candidacies_.begin(), candidacies_.end());
    std::int64_t split = 0;
    for (std::size_t i = 1; i < candidacies_.size(); ++i)
      if (candidacies_[i] == candidacies_[i - 1] &&
          (i == 1 || candidacies_[i - 1] != candidacies_[i - 2]))
        ++split;
    return split;
  }

  /// The first leader after a crash.
  void elected() {
    const Time took = ctx_.now() - crashed_at_;
    if (!trials_.running)  // a series logs nothing per trial
      ctx_.log("leader " + std::to_string(leader_) + " elected in term " +
               std::to_string(node(leader_).term) + ", " + std::to_string(to_milliseconds(took)) +
               " ms after the crash");
    leaderless_ += took;
    split_votes_ += split_votes();
    leaderless_metric_.add(to_seconds(took));
    crashed_at_ = -1;
    if (trials_.running) trial_done(took);
  }

  void arm_trial() {
    ctx_.after(trials_.settle, [this] { trials_.crash_armed = true; });
  }

  void crash_for_trial() {
    const int crashed = crash_leader();
    if (crashed < 0) {  // the leader stepped down meanwhile: crash its successor
      trials_.crash_armed = true;
      return;
    }
    trials_.running = true;
    trials_.crashed = crashed;
    trials_.give_up_event = ctx_.after(trials_.give_up, [this] {
      ctx_.log("no leader " + std::to_string(to_seconds(trials_.give_up)) +
               " s after the crash: the series of elections stops");
      ++no_leader_;
      end_trials();
      restart(trials_.crashed);
    });
  }

  void trial_done(Time took) {
    ctx_.cancel(trials_.give_up_event);
    election_times_.record(took);
    samples_ms_.push_back(to_milliseconds(took));
    elections_metric_.add(1);
    restart(trials_.crashed);
    if (--trials_.left > 0) {
      trials_.running = false;
      arm_trial();
    } else {
      end_trials();
    }
  }

  void end_trials() {
    trials_.left = 0;
    trials_.running = false;
    ctx_.release();
  }

  // ---- clients ----

  /// The leader runs the command and replicates it to a majority: its own work plus one
  /// broadcast (a round trip at the mean network delay and the followers' disk write).
  void serve(SlotHandle h) {
    const Time broadcast = round_time(2 * config_.delay.mean()) + config_.disk_write;
    ctx_.after(commands_[h].request.service + broadcast, [this, h] {
      ctx_.complete(commands_[h].request, Outcome::ok);
      commands_.release(h);
    });
  }

  Config config_;
  Context& ctx_;
  std::vector<Node> nodes_;
  int leader_ = -1;
  EventId heartbeat_;
  Metric& leaderless_metric_;
  Metric& elections_metric_;
  SlotPool<Command> commands_;
  std::vector<SlotHandle> waiting_;         // commands waiting for a leader (stale once timed out)
  Time crashed_at_ = -1;                    // the leader crashed then; no successor yet
  std::vector<std::uint64_t> candidacies_;  // the term of every candidacy since the crash
  TrialSeries trials_;
  Histogram election_times_;
  std::vector<double> samples_ms_;
  std::int64_t no_leader_ = 0, split_votes_ = 0;
  Time leaderless_ = 0;
};

LessonInfo info() {
  return {
      "consensus",
      "Consensus: Raft leader election with fixed vs randomized timeouts",
      "With the same election timeout everywhere, the followers of a crashed leader (who heard "
      "its last heartbeat together) time out within a fraction of a millisecond, before any "
      "RequestVote reaches them: several stand in the same term and split the votes; they retry "
      "after the same timeout and split again. The cluster can stay without a leader, unable to "
      "take commands, for seconds.",
      "Randomize each election timeout in a range (Raft: 150-300 ms). One follower usually "
      "times out well before the others and wins the majority before anyone else stands. Even "
      "5 ms of randomness helps; a range wider than the network delay removes almost all split "
      "votes.",
      {"etcd / Kubernetes (election-timeout randomized in [T, 2T))", "Consul and Nomad (Raft)",
       "CockroachDB and TiKV (Multi-Raft)", "Kafka KRaft controller quorum"},
      {{"fixed", true, "every node uses election_timeout_min exactly"},
       {"randomized", false, "each timeout drawn uniformly in [election_timeout_min, max]"}},
      {{"nodes", ParamType::integer, 5, "cluster size", 3, 99},
       {"election_timeout_min", ParamType::duration, "150ms", "lower end of the timeout", 1e-3, 60},
       {"election_timeout_max", ParamType::duration, "300ms",
        "upper end of the timeout (randomized only)", 1e-3, 60},
       {"heartbeat", ParamType::duration, 0,
        "leader heartbeat interval; 0: half of election_timeout_min (the paper's setting)", 0, 60},
       {"delay_min", ParamType::duration, "1.5ms", "one-way network delay, lower end (uniform)", 0,
        10},
       {"delay_max", ParamType::duration, "2.5ms", "one-way network delay, upper end", 0, 10},
       {"disk_write", ParamType::duration, "11ms",
        "a node persists its term and vote before answering a RequestVote (the broadcast time "
        "is two network delays plus this)",
        0, 10},
       {"timer_jitter", ParamType::duration, "0.3ms",
        "a timer fires up to this late (scheduling noise; 0 makes fixed timeouts livelock)", 0, 1},
       {"unequal_logs", ParamType::boolean, true,
        "at each crash the survivors' logs get distinct lengths, so the shortest cannot win "
        "(the paper's worst case)"},
       {"client_timeout", ParamType::duration, "1s",
        "how long a command waits for a leader before timing out", 1e-3, 3600}},
      {{"crash_leader",
        "the current leader crashes; it restarts as a follower after restart_after",
        {{"restart_after", ParamType::duration, "5s", "downtime of the crashed node", 0, 3600}}}},
      {{"elections",
        "start `trials` crash/elect cycles on this cluster (the experiment runs until they "
        "end, within its drain): `settle` after each election the leader crashes at a random "
        "point of its heartbeat interval; the time to the next leader fills the elect_* "
        "figures",
        {{"trials", ParamType::integer, 1000, "crash/elect cycles", 1, 1e6},
         {"settle", ParamType::duration, "1s",
          "stable time between a new leader and the next crash", 0.05, 60},
         {"give_up", ParamType::duration, "600s",
          "a trial without a leader this long after the crash ends the series (no_leader)", 1,
          1e6}}},
       {"election_times",
        "the figures of the elections so far and the election times in trial order "
        "(samples_ms), plus trials_left",
        {}}},
      {{"leaderless_seconds", MetricSpec::Kind::counter, "time without a leader after crashes"},
       {"elections", MetricSpec::Kind::counter, "elections measured by the elections operation"}},
      {{"elections", Unit::count, "crash/elect trials measured"},
       {"no_leader", Unit::count,
        "trials that elected no leader within give_up (one ends the series, and the elect_* "
        "figures are then not reported)"},
       {"split_votes", Unit::count,
        "terms in which two or more candidates stood, between crashes and the next leaders"},
       {"elect_p50", Unit::seconds, "median time from a crash to the next leader"},
       {"elect_mean", Unit::seconds, "mean time from a crash to the next leader"},
       {"elect_p99", Unit::seconds, "99th percentile of the time to the next leader"},
       {"elect_max", Unit::seconds, "longest time to the next leader"},
       {"leaderless", Unit::seconds,
        "time without a leader after crashes (including an election still running)"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& p, Context& ctx) {
  const Time min = p.duration("election_timeout_min"), max = p.duration("election_timeout_max");
  const Time delay_min = p.duration("delay_min"), delay_max = p.duration("delay_max");
  if (variant == "randomized" && max < min)
    throw std::invalid_argument("election_timeout_max must be at least election_timeout_min");
  if (delay_max < delay_min) throw std::invalid_argument("delay_max must be at least delay_min");
  const Time heartbeat = p.duration("heartbeat") > 0 ? p.duration("heartbeat") : min / 2;
  if (heartbeat >= min)
    throw std::invalid_argument("heartbeat must be shorter than election_timeout_min");
  const auto ns = [](Time t) { return static_cast<double>(t); };
  const Config config{p.integer<int>("nodes"),
                      variant == "fixed" ? Distribution::constant(ns(min))
                                         : Distribution::uniform(ns(min), ns(max)),
                      Distribution::uniform(ns(delay_min), ns(delay_max)),
                      Distribution::uniform(0, ns(p.duration("timer_jitter"))),
                      heartbeat,
                      p.duration("disk_write"),
                      p.duration("client_timeout"),
                      p.boolean("unequal_logs")};
  return std::make_unique<Consensus>(config, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
