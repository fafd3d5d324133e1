// Horizontal scaling: one big server vs N small stateless ones behind a balancer.
//
//   problem:  one_big_server      -> every request on one machine: it dies, everything fails;
//                                    it restarts, its in-memory sessions are gone (every user
//                                    logged out); it is full, the only way up is a bigger box
//             in_memory_sessions  -> N servers, but a session lives on the server that created it:
//                                    balancer.pick(client) = servers[hash(client) % alive] (sticky)
//                                    a server dies or joins, hash % alive moves most users to a
//                                    server that does not know them: logged out
//   fix:      external_session_store -> servers keep no state; session = store.get(client) from
//                                    any server (costs store_latency): kill a server, only its
//                                    in-flight requests fail, nobody is logged out
//             autoscaling         -> the same, plus target tracking every scale_interval:
//                                    desired = ceil(in_service * utilisation / target)
//                                    launch the difference (ready after provision_delay),
//                                    or drain one server when over-provisioned
//
// Users are request.client. A request that reaches a server without a valid session for its client
// counts as a logout (a forced re-login) unless it is the client's first request ever.
#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;

enum class Design { one_big_server, in_memory_sessions, external_session_store, autoscaling };
enum class State : std::uint8_t { booting, in_service, draining, retired, dead };

const char* state_name(State s) {
  static const char* names[] = {"booting", "in_service", "draining", "retired", "dead"};
  return names[static_cast<int>(s)];
}

/// One machine of the fleet: a queueing server, its life cycle and its memory.
struct Instance {
  Instance(Context& ctx, Server<Request>::Options options, Server<Request>::Done done)
      : server(ctx, options, std::move(done)) {}
  Server<Request> server;
  State state = State::retired;         // set_state counts it from here
  std::uint32_t epoch = 1;              // bumped when the server dies and loses its memory
  std::vector<std::uint32_t> sessions;  // in-memory sessions: sessions[client] == epoch
  bool paid() const {
    return state == State::booting || state == State::in_service || state == State::draining;
  }
  int capacity() const {
    return state == State::in_service || state == State::draining ? server.workers() : 0;
  }
};

class Fleet final : public System {
 public:
  Fleet(Design design, const Params& p, Context& ctx)
      : design_(design),
        ctx_(ctx),
        workers_(p.integer<int>("workers")),
        queue_limit_(p.integer<std::size_t>("queue_limit")),
        sticky_(p.boolean("sticky")),
        store_latency_(p.duration("store_latency")),
        target_(p.real("target_utilization")),
        interval_(p.duration("scale_interval")),
        provision_delay_(p.duration("provision_delay")),
        min_servers_(p.integer("min_servers")),
        max_servers_(p.integer("max_servers")),
        servers_metric_(ctx.metric("servers_in_service")),
        logouts_metric_(ctx.metric("logouts")) {
    if (min_servers_ > max_servers_)
      throw std::invalid_argument("min_servers (" + std::to_string(min_servers_) +
                                  ") must not exceed max_servers (" + std::to_string(max_servers_) +
                                  ")");
    if (design_ == Design::one_big_server) {
      add_server(State::in_service, p.integer<int>("big_workers"));
    } else {
      std::int64_t n = p.integer("servers");
      if (design_ == Design::autoscaling) n = std::clamp(n, min_servers_, max_servers_);
      for (std::int64_t i = 0; i < n; ++i) add_server(State::in_service, workers_);
    }
    peak_servers_ = paid_servers_;
    if (design_ == Design::autoscaling) ctx_.after(interval_, [this] { autoscale(); });
  }

  void handle(const Request& r) override {
    if (rotation_.empty()) {  // nothing to route to: 503 from the balancer
      ++unavailable_;
      return ctx_.complete(r, Outcome::error);
    }
    const std::uint32_t s = pick(r);
    check_session(s, r.client);
    const Time work = r.service + (memory_sessions() ? 0 : store_latency_);
    if (servers_[s].server.submit(r, work) == Admission::rejected)
      ctx_.complete(r, Outcome::rejected);
  }

  void inject(const std::string& fault, const Value& p) override {
    const std::uint32_t index = server_index(p["server"].as_int());
    Instance& s = servers_[index];
    if (fault == "kill_server") {
      if (s.state == State::dead || s.state == State::retired) return;
      s.server.kill([this](Request& r) {  // in-flight and queued requests die with it
        ++lost_in_flight_;
        ctx_.complete(r, Outcome::error);
      });
      ++s.epoch;  // its memory (in-memory sessions) is gone
      set_state(index, State::dead);
      ctx_.log("server " + std::to_string(index) + " killed");
    } else if (fault == "restart_server") {
      if (s.state != State::dead) return;
      s.server.restart();
      set_state(index, State::in_service);
      ctx_.log("server " + std::to_string(index) + " restarted with empty memory");
    }
  }

  Value call(const std::string& op, const Value&) override {
    if (op == "servers") {
      List out;
      for (const Instance& s : servers_)
        out.push_back(Map{{"state", std::string(state_name(s.state))},
                          {"workers", s.server.workers()},
                          {"outstanding", static_cast<std::int64_t>(s.server.outstanding())},
                          {"served", s.server.served()}});
      return out;
    }
    if (design_ == Design::one_big_server)
      throw std::invalid_argument(
          "one big server cannot scale out: the only way up is a bigger machine (vertical "
          "limit)");
    if (op == "add_server") {
      add_server(State::in_service, workers_);
      return static_cast<std::int64_t>(servers_.size() - 1);
    }
    // remove_server: drain the newest server in service
    for (std::size_t i = servers_.size(); i-- > 0;)
      if (servers_[i].state == State::in_service && rotation_.size() > 1) {
        drain(static_cast<std::uint32_t>(i));
        return static_cast<std::int64_t>(i);
      }
    throw std::invalid_argument("no server can be removed: keep at least one in service");
  }

  Map figures() const override {
    const double dt = to_seconds(ctx_.now() - last_account_);  // integrals up to now
    const double busy = busy_seconds() - busy_at_reset_;
    const double capacity = capacity_area_ + static_cast<double>(capacity_workers_) * dt;
    return {{"logouts", logouts_},
            {"lost_in_flight", lost_in_flight_},
            {"unavailable", unavailable_},
            {"peak_servers", peak_servers_},
            {"server_seconds",  // in small-server equivalents: the big one counts for its size
             (paid_area_ + static_cast<double>(paid_workers_) * dt) / workers_},
            {"utilization", capacity > 0 ? busy / capacity : 0.0}};
  }

  void reset_stats() override {
    account();
    logouts_ = lost_in_flight_ = unavailable_ = 0;
    peak_servers_ = paid_servers_;
    capacity_area_ = paid_area_ = 0;
    busy_at_reset_ = busy_seconds();
  }

 private:
  std::uint32_t server_index(std::int64_t index) const {
    if (index < 0 || index >= static_cast<std::int64_t>(servers_.size()))
      throw std::invalid_argument("server " + std::to_string(index) + " does not exist (0.." +
                                  std::to_string(servers_.size() - 1) + ")");
    return static_cast<std::uint32_t>(index);
  }

  bool memory_sessions() const {
    return design_ == Design::one_big_server || design_ == Design::in_memory_sessions;
  }

  /// A login on first sight; afterwards a request without a valid session is a forced re-login.
  void check_session(std::uint32_t s, std::uint32_t client) {
    if (client >= seen_.size()) seen_.resize(client + 1, 0);
    const bool returning = seen_[client] != 0;
    seen_[client] = 1;
    if (!memory_sessions()) return;  // the session store knows every session, from any server
    Instance& server = servers_[s];
    if (client >= server.sessions.size()) server.sessions.resize(client + 1, 0);
    if (server.sessions[client] == server.epoch) return;
    server.sessions[client] = server.epoch;
    if (returning) {
      ++logouts_;
      logouts_metric_.add(1);
    }
  }

  std::uint32_t pick(const Request& r) {
    const std::size_t n = rotation_.size();
    if (design_ == Design::in_memory_sessions && sticky_) return rotation_[Rng::hash(r.client) % n];
    // Least outstanding requests, scanning from a rotating start to spread ties.
    const std::size_t first = next_++ % n;
    std::uint32_t best = rotation_[first];
    for (std::size_t k = 1; k < n; ++k) {
      const std::uint32_t c = rotation_[(first + k) % n];
      if (servers_[c].server.outstanding() < servers_[best].server.outstanding()) best = c;
    }
    return best;
  }

  void add_server(State state, int workers) {
    const auto index = static_cast<std::uint32_t>(servers_.size());
    servers_.emplace_back(ctx_, Server<Request>::Options{workers, queue_limit_},
                          [this, index](Request& r) {
                            ctx_.complete(r, Outcome::ok);
                            const Instance& s = servers_[index];
                            if (s.state == State::draining && s.server.outstanding() == 0)
                              set_state(index, State::retired);
                          });
    set_state(index, state);
  }

  void drain(std::uint32_t s) {
    set_state(s, servers_[s].server.outstanding() == 0 ? State::retired : State::draining);
  }

  /// Change a server's state, keeping the rotation and the capacity integrals right.
  void set_state(std::uint32_t s, State state) {
    account();
    Instance& server = servers_[s];
    capacity_workers_ -= server.capacity();
    paid_servers_ -= server.paid() ? 1 : 0;
    paid_workers_ -= server.paid() ? server.server.workers() : 0;
    server.state = state;
    capacity_workers_ += server.capacity();
    paid_servers_ += server.paid() ? 1 : 0;
    paid_workers_ += server.paid() ? server.server.workers() : 0;
    peak_servers_ = std::max(peak_servers_, paid_servers_);
    rotation_.clear();
    for (std::uint32_t i = 0; i < servers_.size(); ++i)
      if (servers_[i].state == State::in_service) rotation_.push_back(i);
    servers_metric_.set(static_cast<double>(rotation_.size()));
  }

  /// Integrate capacity and paid workers over time, up to now.
  void account() {
    const Time now = ctx_.now();
    const double dt = to_seconds(now - last_account_);
    capacity_area_ += static_cast<double>(capacity_workers_) * dt;
    paid_area_ += static_cast<double>(paid_workers_) * dt;
    last_account_ = now;
  }

  /// Worker-seconds spent serving, by every server that ever was.
  double busy_seconds() const {
    double busy = 0;
    for (Instance& s : servers_) busy += s.server.busy_seconds();
    return busy;
  }

  /// Target tracking: size the fleet so that the work of the last interval (mean busy workers)
  /// would keep each server at the target utilisation.
  void autoscale() {
    const double busy = busy_seconds();
    const double mean_busy = (busy - busy_at_tick_) / to_seconds(interval_);
    busy_at_tick_ = busy;
    std::int64_t in_service = 0, booting = 0;
    for (const Instance& s : servers_) {
      in_service += s.state == State::in_service ? 1 : 0;
      booting += s.state == State::booting ? 1 : 0;
    }
    const double needed = mean_busy / (static_cast<double>(workers_) * target_);
    std::int64_t desired = static_cast<std::int64_t>(std::ceil(needed - 1e-9));
    desired = std::clamp(desired, min_servers_, max_servers_);
    if (desired > in_service + booting) {
      for (std::int64_t i = in_service + booting; i < desired; ++i) {
        const auto index = static_cast<std::uint32_t>(servers_.size());
        add_server(State::booting, workers_);
        ctx_.after(provision_delay_, [this, index] {
          if (servers_[index].state == State::booting) set_state(index, State::in_service);
        });
      }
      ctx_.log("scale out: " + std::to_string(mean_busy) + " busy workers, launching " +
               std::to_string(desired - in_service - booting) + " server(s)");
    } else if (desired < in_service && booting == 0) {
      for (std::size_t i = servers_.size(); i-- > 0;)  // scale in gently: one server per interval
        if (servers_[i].state == State::in_service) {
          drain(static_cast<std::uint32_t>(i));
          break;
        }
    }
    ctx_.after(interval_, [this] { autoscale(); });
  }

  Design design_;
  Context& ctx_;
  int workers_;
  std::size_t queue_limit_;
  bool sticky_;
  Time store_latency_;
  double target_;
  Time interval_, provision_delay_;
  std::int64_t min_servers_, max_servers_;
  Metric& servers_metric_;
  Metric& logouts_metric_;
  // A Server stays where it was built (deque). Mutable: Server::busy_seconds() brings its
  // accounting up to date, so figures() needs it non-const.
  mutable std::deque<Instance> servers_;
  std::vector<std::uint32_t> rotation_;
  std::vector<std::uint8_t> seen_;  // seen_[client]: has logged in once
  std::uint64_t next_ = 0;
  std::int64_t logouts_ = 0, lost_in_flight_ = 0, unavailable_ = 0;
  std::int64_t capacity_workers_ = 0, paid_servers_ = 0, paid_workers_ = 0, peak_servers_ = 0;
  Time last_account_ = 0;
  double capacity_area_ = 0, paid_area_ = 0, busy_at_reset_ = 0, busy_at_tick_ = 0;
};

LessonInfo info() {
  const ParamSpec server{"server", ParamType::integer, Value(), "server index", 0, 1e6};
  return {
      "horizontal_scaling",
      "Horizontal scaling: stateless servers, a session store and autoscaling",
      "One big server is a single point of failure and has a vertical limit: when it dies "
      "every request fails, when it restarts every user is logged out (sessions lived in its "
      "memory), and when traffic outgrows it there is nothing bigger to buy. Spreading users "
      "over N servers that keep sessions in memory is no better: a server that dies or joins "
      "makes the balancer move users to servers that do not know them.",
      "Make the servers stateless: keep sessions in an external store (Redis, DynamoDB) that "
      "every server reads, so any server can serve any user and a dead server costs only its "
      "in-flight requests. Then capacity is a number of interchangeable servers that a target "
      "tracking autoscaler adds and removes as utilisation moves.",
      {"AWS Auto Scaling target tracking (CPU utilisation target)",
       "Kubernetes Horizontal Pod Autoscaler", "Redis / Memcached / DynamoDB session stores",
       "Spring Session, express-session with a Redis store"},
      {{"one_big_server", true, "one machine with big_workers workers, sessions in memory"},
       {"in_memory_sessions", true,
        "N servers, sessions in the memory of the server that created them"},
       {"external_session_store", false, "N stateless servers, sessions in a shared store"},
       {"autoscaling", false, "stateless servers + target tracking autoscaling"}},
      {{"servers", ParamType::integer, 4, "small servers (initial count for autoscaling)", 1,
        10000},
       {"workers", ParamType::integer, 8, "requests a small server serves at once", 1, 100000},
       {"big_workers", ParamType::integer, 32,
        "requests the one big server serves at once: the biggest machine you can buy", 1, 1e6},
       {"queue_limit", ParamType::integer, 100, "waiting requests per server before 503s", 0, 1e9},
       {"sticky", ParamType::boolean, true,
        "in_memory_sessions: route a client to servers[hash(client) % alive] (else least "
        "outstanding)"},
       {"store_latency", ParamType::duration, "1ms",
        "session store lookup added to each request of the stateless variants", 0, 10},
       {"target_utilization", ParamType::real, 0.6, "autoscaling: utilisation to track", 0.05, 1},
       {"scale_interval", ParamType::duration, "10s", "autoscaling: time between decisions", 1e-3,
        3600},
       {"provision_delay", ParamType::duration, "30s", "autoscaling: time for a new server to boot",
        0, 3600},
       {"min_servers", ParamType::integer, 1, "autoscaling: fewest servers", 1, 10000},
       {"max_servers", ParamType::integer, 100, "autoscaling: most servers", 1, 10000}},
      {{"kill_server",
        "the server dies: its in-flight and queued requests fail and its memory is lost",
        {server}},
       {"restart_server", "a dead server comes back, with empty memory", {server}}},
      {{"servers", "every server: state, workers, outstanding, served", {}},
       {"add_server", "scale out by one server (now in service); returns its index", {}},
       {"remove_server", "drain the newest server in service; returns its index", {}}},
      {{"servers_in_service", MetricSpec::Kind::gauge, "servers the balancer routes to"},
       {"logouts", MetricSpec::Kind::counter, "users forced to log in again"}},
      {{"logouts", Unit::count, "returning users who found no session: forced to log in again"},
       {"lost_in_flight", Unit::count, "requests running or queued on a server when it died"},
       {"unavailable", Unit::count, "requests that found no server in service"},
       {"peak_servers", Unit::count, "most servers paid for at once (booting, serving, draining)"},
       {"server_seconds", Unit::number,
        "servers paid for times seconds, in small-server equivalents (the cost)"},
       {"utilization", Unit::fraction, "busy worker-seconds over worker-seconds in service"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Design> designs[] = {
      {"one_big_server", Design::one_big_server},
      {"in_memory_sessions", Design::in_memory_sessions},
      {"external_session_store", Design::external_session_store},
      {"autoscaling", Design::autoscaling}};
  return std::make_unique<Fleet>(variant_value(variant, designs), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
