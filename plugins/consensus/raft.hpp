// A Raft leader election (no log replication) on its own small event queue, so that the same
// cluster runs live inside an experiment (driven by the host kernel) or in a tight loop of
// crash/elect trials.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <vector>

#include "hldlab/sim.hpp"

namespace raft {

using hldlab::Rng;
using hldlab::Time;

struct Config {
  int nodes = 5;
  Time timeout_min = hldlab::milliseconds(150);
  Time timeout_max = hldlab::milliseconds(150);
  Time heartbeat = hldlab::milliseconds(50);
  Time delay_min = hldlab::milliseconds(1);
  Time delay_max = hldlab::milliseconds(5);
  Time timer_jitter = 0;  // a timer fires up to this late (OS scheduling noise)
};

enum class Role : std::uint8_t { follower, candidate, leader };

struct Node {
  bool alive = true;
  Role role = Role::follower;
  std::uint64_t term = 0;
  int voted_for = -1;  // in `term`
  int votes = 0;       // as a candidate in `term`
  Time deadline = 0;   // election timeout
  Time timer_at = -1;  // time of the pending timer event (-1: none)
};

/// Election on an event queue of plain structs (no allocation per message).
class Cluster {
 public:
  Cluster(const Config& config, std::uint64_t seed) : config_(config), rng_(seed) {
    nodes_.resize(static_cast<std::size_t>(config.nodes));
    // Bootstrap: node 0 leads term 1; the others heard from it at time 0.
    for (int i = 0; i < config.nodes; ++i) {
      nodes_[i].term = 1;
      nodes_[i].voted_for = 0;
      if (i != 0) reset_timer(i);
    }
    become_leader(0);
  }

  Time now() const { return now_; }
  /// Time of the next event (max Time when none).
  Time next_time() const {
    return queue_.empty() ? std::numeric_limits<Time>::max() : queue_.top().time;
  }
  /// Run one event; returns false when there is none.
  bool step() {
    if (queue_.empty()) return false;
    const Event e = queue_.top();
    queue_.pop();
    now_ = e.time;
    dispatch(e);
    return true;
  }
  void run_until(Time t) {
    while (next_time() <= t) step();
    now_ = std::max(now_, t);
  }
  /// Set the clock forward without events (the host kernel moved on).
  void advance_to(Time t) { now_ = std::max(now_, t); }

  int leader() const { return leader_; }
  std::uint64_t term() const { return leader_ >= 0 ? nodes_[leader_].term : 0; }
  Time elected_at() const { return elected_at_; }
  std::int64_t elections_started() const { return elections_started_; }
  std::int64_t elections_won() const { return elections_won_; }
  const Node& node(int i) const { return nodes_[static_cast<std::size_t>(i)]; }
  int size() const { return static_cast<int>(nodes_.size()); }

  /// Crash the current leader (if any); returns its index or -1.
  int crash_leader() {
    const int l = leader_;
    if (l < 0) return -1;
    nodes_[l].alive = false;
    nodes_[l].role = Role::follower;
    leader_ = -1;
    return l;
  }
  /// Restart a crashed node as a follower; term and vote are persistent state in Raft.
  void restart(int i) {
    Node& n = nodes_[static_cast<std::size_t>(i)];
    if (n.alive) return;
    n.alive = true;
    n.role = Role::follower;
    reset_timer(i);
  }

 private:
  enum class Kind : std::uint8_t { timer, heartbeat_tick, request_vote, vote, append_entries };
  struct Event {
    Time time;
    std::uint64_t seq;
    Kind kind;
    bool granted;
    std::int16_t from, to;
    std::uint64_t term;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };

  void push(Time at, Kind kind, int from, int to, std::uint64_t term, bool granted = false) {
    queue_.push(Event{at, seq_++, kind, granted, static_cast<std::int16_t>(from),
                      static_cast<std::int16_t>(to), term});
  }
  /// Uniform in [0, span] ns.
  Time uniform(Time span) {
    return span > 0 ? static_cast<Time>(rng_.below(static_cast<std::uint64_t>(span) + 1)) : 0;
  }
  Time delay() { return config_.delay_min + uniform(config_.delay_max - config_.delay_min); }
  void send(Kind kind, int from, int to, std::uint64_t term, bool granted = false) {
    push(now_ + delay(), kind, from, to, term, granted);
  }

  void reset_timer(int i) {
    Node& n = nodes_[static_cast<std::size_t>(i)];
    const Time span = config_.timeout_max - config_.timeout_min;
    n.deadline = now_ + config_.timeout_min + uniform(span) + uniform(config_.timer_jitter);
    if (n.timer_at < 0 || n.deadline < n.timer_at) {  // otherwise the pending event re-arms
      n.timer_at = n.deadline;
      push(n.deadline, Kind::timer, i, i, 0);
    }
  }

  void become_leader(int i) {
    Node& n = nodes_[static_cast<std::size_t>(i)];
    n.role = Role::leader;
    leader_ = i;
    elected_at_ = now_;
    ++elections_won_;
    heartbeat(i, n.term);
  }

  void heartbeat(int i, std::uint64_t term) {
    for (int j = 0; j < size(); ++j)
      if (j != i) send(Kind::append_entries, i, j, term);
    push(now_ + config_.heartbeat, Kind::heartbeat_tick, i, i, term);
  }

  /// A higher term seen: step down to follower in that term.
  void observe(int i, std::uint64_t term) {
    Node& n = nodes_[static_cast<std::size_t>(i)];
    if (term <= n.term) return;
    const bool was_leader = n.role == Role::leader;
    if (was_leader && leader_ == i) leader_ = -1;
    n.term = term;
    n.role = Role::follower;
    n.voted_for = -1;
    if (was_leader) reset_timer(i);  // a leader runs no election timer
  }

  void dispatch(const Event& e) {
    Node& n = nodes_[static_cast<std::size_t>(e.to)];
    if (!n.alive) {
      if (e.kind == Kind::timer) n.timer_at = -1;
      return;  // a crashed node hears nothing and its timers are gone
    }
    switch (e.kind) {
      case Kind::timer: {
        if (e.time != n.timer_at) return;  // superseded by an earlier timer
        n.timer_at = -1;
        if (n.role == Role::leader) return;
        if (now_ < n.deadline) {  // reset meanwhile: sleep until the new deadline
          n.timer_at = n.deadline;
          push(n.deadline, Kind::timer, e.to, e.to, 0);
          return;
        }
        // Election timeout: become a candidate in a new term.
        n.role = Role::candidate;
        ++n.term;
        n.voted_for = e.to;
        n.votes = 1;
        ++elections_started_;
        reset_timer(e.to);
        for (int j = 0; j < size(); ++j)
          if (j != e.to) send(Kind::request_vote, e.to, j, n.term);
        return;
      }
      case Kind::heartbeat_tick:
        if (n.role == Role::leader && n.term == e.term) heartbeat(e.to, e.term);
        return;
      case Kind::request_vote: {
        observe(e.to, e.term);
        const bool grant = e.term == n.term && (n.voted_for < 0 || n.voted_for == e.from);
        if (grant) {
          n.voted_for = e.from;
          reset_timer(e.to);
        }
        send(Kind::vote, e.to, e.from, n.term, grant);
        return;
      }
      case Kind::vote:
        observe(e.to, e.term);
        if (n.role == Role::candidate && e.granted && e.term == n.term && ++n.votes > size() / 2)
          become_leader(e.to);
        return;
      case Kind::append_entries:
        if (e.term < n.term) return;  // a stale leader (its reply would make it step down)
        observe(e.to, e.term);
        if (n.role == Role::candidate) n.role = Role::follower;
        reset_timer(e.to);
        return;
    }
  }

  Config config_;
  Rng rng_;
  std::vector<Node> nodes_;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::uint64_t seq_ = 0;
  Time now_ = 0;
  int leader_ = -1;
  Time elected_at_ = 0;
  std::int64_t elections_started_ = 0, elections_won_ = 0;
};

}  // namespace raft
