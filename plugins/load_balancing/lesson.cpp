// Load balancing: which backend gets the next request?
//
//   problem:  round_robin(request) -> backends[i++ % n]
//             random(request)      -> backends[random(n)]
//             blind to load: a backend stuck on a slow request keeps receiving its share, so
//             requests queue behind it and the tail (P99) explodes under heavy-tailed work.
//   fix:      least_connections(request) -> argmin(outstanding), ties broken at random
//             p2c(request)                -> d = `choices` distinct random backends; the least
//                                            loaded of them (d = 2: the power of two choices)
//             weighted_round_robin        -> smooth WRR by backend speed (nginx)
//             ip_hash(request)            -> backends[hash(client) % n] (affinity, not speed)
//   health:   every interval, probe each backend; after `unhealthy_after` failed probes remove
//             it from rotation. Until then, requests sent to a dead backend fail.
#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;

enum class Policy { round_robin, random, least_connections, p2c, weighted_round_robin, ip_hash };

constexpr int kMaxChoices = 16;

struct Backend {
  Backend(Context& ctx, Server<Request>::Options options, Server<Request>::Done done)
      : server(ctx, options, std::move(done)) {}
  Server<Request> server;
  bool in_rotation = true;
  int failed_checks = 0;
  double wrr_current = 0;          // smooth weighted round robin state
  std::int64_t served_before = 0;  // server.served() when the statistics were last reset
  std::int64_t served() const { return server.served() - served_before; }
  std::size_t load() const { return server.outstanding(); }
};

class Balancer final : public System {
 public:
  Balancer(Policy policy, const Params& p, Context& ctx)
      : policy_(policy),
        ctx_(ctx),
        workers_(p.integer<int>("workers")),
        queue_limit_(p.integer<std::size_t>("queue_limit")),
        choices_(policy == Policy::random ? 1 : p.integer<std::size_t>("choices")),
        health_checks_(p.boolean("health_checks")),
        check_interval_(p.duration("health_check_interval")),
        unhealthy_after_(p.integer<int>("unhealthy_after")),
        in_rotation_metric_(ctx.metric("backends_in_rotation")),
        dead_errors_metric_(ctx.metric("dead_backend_errors")),
        removals_metric_(ctx.metric("health_check_removals")) {
    const auto speeds = p.numbers("speeds");
    const auto n = p.integer<std::size_t>("backends");
    if (!speeds.empty() && speeds.size() != n)
      throw std::invalid_argument("speeds must list one speed per backend (" + std::to_string(n) +
                                  "), got " + std::to_string(speeds.size()));
    for (std::size_t i = 0; i < n; ++i) add_backend(speeds.empty() ? 1.0 : speeds[i]);
    if (health_checks_) ctx_.after(check_interval_, [this] { health_check(); });
  }

  void handle(const Request& r) override {
    if (rotation_.empty()) return ctx_.complete(r, Outcome::error);
    switch (pick(r).server.submit(r, r.service)) {
      case Admission::started:
      case Admission::queued:
        return;
      case Admission::rejected:
        return ctx_.complete(r, Outcome::rejected);
      case Admission::down:  // connection refused: fails at once
        ++refused_by_dead_;
        dead_errors_metric_.add(1);
        return ctx_.complete(r, Outcome::error);
    }
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "add_backend") return add_backend(p["speed"].as_double());
    Server<Request>& server = backend_at(p["backend"].as_int()).server;
    if (fault == "kill_backend") {
      server.kill([this](Request& r) {  // in-flight and queued requests die with it
        ++lost_in_flight_;
        dead_errors_metric_.add(1);
        ctx_.complete(r, Outcome::error);
      });
    } else if (fault == "restart_backend") {
      server.restart();
    } else if (fault == "slow_backend") {
      server.set_slow(p["factor"].as_double());
    }
  }

  Value call(const std::string& op, const Value&) override {
    List out;
    if (op == "backends")
      for (const Backend& b : backends_)
        out.push_back(Map{{"alive", b.server.alive()},
                          {"in_rotation", b.in_rotation},
                          {"outstanding", static_cast<std::int64_t>(b.server.outstanding())},
                          {"served", b.served()},
                          {"speed", b.server.speed()}});
    return out;
  }

  Map figures() const override {
    std::int64_t most = 0, total = 0;
    for (const Backend& b : backends_) most = std::max(most, b.served()), total += b.served();
    const double mean = backends_.empty() ? 0 : static_cast<double>(total) / backends_.size();
    return {{"refused_by_dead", refused_by_dead_},
            {"lost_in_flight", lost_in_flight_},
            {"removed_by_check", removed_},
            {"max_over_mean_load", mean > 0 ? most / mean : 0.0}};
  }

  void reset_stats() override {
    refused_by_dead_ = lost_in_flight_ = removed_ = 0;
    for (Backend& b : backends_) b.served_before = b.server.served();
  }

 private:
  Backend& backend_at(std::int64_t index) {
    if (index < 0 || index >= static_cast<std::int64_t>(backends_.size()))
      throw std::invalid_argument("backend " + std::to_string(index) + " does not exist (0.." +
                                  std::to_string(backends_.size() - 1) + ")");
    return backends_[static_cast<std::size_t>(index)];
  }

  void add_backend(double speed) {
    backends_.emplace_back(ctx_, Server<Request>::Options{workers_, queue_limit_, speed},
                           [this](Request& r) { ctx_.complete(r, Outcome::ok); });
    rebuild_rotation();
  }

  void rebuild_rotation() {
    rotation_.clear();
    for (Backend& b : backends_)
      if (b.in_rotation) rotation_.push_back(&b);
    in_rotation_metric_.set(static_cast<double>(rotation_.size()));
  }

  Backend& pick(const Request& r) {
    const std::size_t n = rotation_.size();
    switch (policy_) {
      case Policy::round_robin: {  // a wrap instead of next % n: no division per request
        if (next_ >= n) next_ = 0;
        return *rotation_[next_++];
      }
      case Policy::least_connections: {
        // The k-th backend tied for the least load replaces the choice with probability 1/k:
        // ties go to one of the tied backends, each as likely as the others.
        Backend* best = rotation_[0];
        std::size_t best_load = best->load(), ties = 1;
        for (std::size_t k = 1; k < n; ++k) {
          const std::size_t load = rotation_[k]->load();
          if (load < best_load)
            best = rotation_[k], best_load = load, ties = 1;
          else if (load == best_load && ctx_.rng().below(++ties) == 0)
            best = rotation_[k];
        }
        return *best;
      }
      case Policy::random:
      case Policy::p2c: {
        // `choices` distinct backends, each drawn uniformly among those not drawn yet (a draw
        // x in [0, n - k) skips the positions already taken); the least loaded wins, ties going
        // to the earliest drawn, which is a random one.
        std::array<std::size_t, kMaxChoices> drawn;  // positions in rotation_, ascending
        Backend* best = nullptr;
        std::size_t best_load = std::numeric_limits<std::size_t>::max();
        for (std::size_t k = 0; k < std::min(choices_, n); ++k) {
          std::size_t x = ctx_.rng().below(n - k), at = 0;
          for (; at < k && drawn[at] <= x; ++at) ++x;
          std::copy_backward(drawn.begin() + at, drawn.begin() + k, drawn.begin() + k + 1);
          drawn[at] = x;
          if (rotation_[x]->load() < best_load) best = rotation_[x], best_load = best->load();
        }
        return *best;
      }
      case Policy::weighted_round_robin: {
        double total = 0;
        Backend* best = rotation_[0];
        for (Backend* c : rotation_) {
          c->wrr_current += c->server.speed();
          total += c->server.speed();
          if (c->wrr_current > best->wrr_current) best = c;
        }
        best->wrr_current -= total;
        return *best;
      }
      case Policy::ip_hash:
        return *rotation_[Rng::hash(r.client) % n];
    }
    return *rotation_[0];
  }

  void health_check() {
    bool changed = false;
    for (std::uint32_t i = 0; i < backends_.size(); ++i) {
      Backend& b = backends_[i];
      if (b.server.alive()) {
        b.failed_checks = 0;
        if (!b.in_rotation) {
          b.in_rotation = changed = true;
          ctx_.log("backend " + std::to_string(i) + " healthy again: back in rotation");
        }
      } else if (++b.failed_checks >= unhealthy_after_ && b.in_rotation) {
        b.in_rotation = false;
        changed = true;
        ++removed_;
        removals_metric_.add(1);
        ctx_.log("backend " + std::to_string(i) + " failed " + std::to_string(b.failed_checks) +
                 " health checks: removed from rotation");
      }
    }
    if (changed) rebuild_rotation();
    ctx_.after(check_interval_, [this] { health_check(); });
  }

  Policy policy_;
  Context& ctx_;
  int workers_;
  std::size_t queue_limit_;
  std::size_t choices_;
  bool health_checks_;
  Time check_interval_;
  int unhealthy_after_;
  Metric& in_rotation_metric_;
  Metric& dead_errors_metric_;
  Metric& removals_metric_;
  std::deque<Backend> backends_;  // a Server stays where it was built
  std::vector<Backend*> rotation_;
  std::size_t next_ = 0;  // round robin: the position in rotation_ served next
  std::int64_t refused_by_dead_ = 0, lost_in_flight_ = 0, removed_ = 0;
};

LessonInfo info() {
  const ParamSpec backend{"backend", ParamType::integer, Value(), "backend index", 0, 1e6};
  return {
      "load_balancing",
      "Load balancing: spreading requests over backends",
      "Round robin (or a random pick) sends every backend the same share whatever its state. "
      "With heavy-tailed service times a backend stuck on a slow request keeps receiving work, "
      "requests queue behind it and P99 explodes; a dead backend keeps receiving its share "
      "until a health check notices.",
      "Pick by load: least connections (fewest outstanding requests) or the power of d random "
      "choices (the least loaded of d random backends: d = 2 is nearly as good with O(1) "
      "state, exponentially better than d = 1); weight by capacity; remove dead backends after "
      "failed health checks.",
      {"NGINX (round_robin, least_conn, ip_hash, random two least_conn)",
       "HAProxy (roundrobin, leastconn, source, random(<draws>))",
       "Envoy (least request = power of d choices, choice_count)", "AWS ALB/NLB health checks"},
      {{"round_robin", true, "each backend in turn, blind to load"},
       {"random", true, "a uniformly random backend, blind to load (the supermarket model, d = 1)"},
       {"least_connections", false,
        "the backend with the fewest outstanding requests (ties at random)"},
       {"p2c", false,
        "power of d choices: the least loaded of `choices` random backends (d = 2 by default)"},
       {"weighted_round_robin", false, "smooth weighted round robin by backend speed"},
       {"ip_hash", false, "hash of the client id: session affinity, not load-aware"}},
      {{"backends", ParamType::integer, 10, "number of backends", 1, 10000},
       {"workers", ParamType::integer, 1, "requests a backend serves at once", 1, 100000},
       {"queue_limit", ParamType::integer, 100000, "waiting requests per backend before 503s", 0,
        1e9},
       {"speeds", ParamType::number_list, List{}, "relative speed per backend (default all 1)",
        1e-6, 1e6},
       {"choices", ParamType::integer, 2,
        "p2c: random backends compared per request (d of the power of d choices; 1 = random)", 1,
        kMaxChoices},
       {"health_checks", ParamType::boolean, true, "probe backends and remove dead ones"},
       {"health_check_interval", ParamType::duration, "5s", "time between probes", 1e-3, 3600},
       {"unhealthy_after", ParamType::integer, 2, "failed probes before removal", 1, 1000}},
      {{"kill_backend",
        "the backend dies: in-flight requests fail, new ones are refused",
        {backend}},
       {"restart_backend",
        "the backend comes back (health checks put it back in rotation)",
        {backend}},
       {"slow_backend",
        "multiply one backend's service time",
        {backend, {"factor", ParamType::real, 10.0, "service time multiplier", 1e-6, 1e6}}},
       {"add_backend",
        "add a backend to the pool (scale out)",
        {{"speed", ParamType::real, 1.0, "relative speed", 1e-6, 1e6}}}},
      {{"backends", "state of every backend: alive, in_rotation, outstanding, served, speed", {}}},
      {{"backends_in_rotation", MetricSpec::Kind::gauge, "backends the balancer routes to"},
       {"dead_backend_errors", MetricSpec::Kind::counter, "requests failed by a dead backend"},
       {"health_check_removals", MetricSpec::Kind::counter, "backends removed by health checks"}},
      {{"refused_by_dead", Unit::count, "requests sent to a dead backend still in rotation"},
       {"lost_in_flight", Unit::count, "requests running or queued on a backend when it died"},
       {"removed_by_check", Unit::count, "backends the health checks took out of rotation"},
       {"max_over_mean_load", Unit::number,
        "requests served by the busiest backend over the mean per backend (1 = even)"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Policy> policies[] = {
      {"round_robin", Policy::round_robin},
      {"random", Policy::random},
      {"least_connections", Policy::least_connections},
      {"p2c", Policy::p2c},
      {"weighted_round_robin", Policy::weighted_round_robin},
      {"ip_hash", Policy::ip_hash}};
  return std::make_unique<Balancer>(variant_value(variant, policies), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
