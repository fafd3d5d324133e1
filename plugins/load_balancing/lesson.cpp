// Load balancing: which backend gets the next request?
//
//   problem:  round_robin(request) -> backends[i++ % n]
//             blind to load: a backend stuck on a slow request keeps receiving its share, so
//             requests queue behind it and the tail (P99) explodes under heavy-tailed work.
//   fix:      least_connections(request) -> argmin(outstanding)
//             p2c(request)                -> a, b = two random backends; the less loaded one
//             weighted_round_robin        -> smooth WRR by backend speed (nginx)
//             ip_hash(request)            -> backends[hash(client) % n] (affinity, not speed)
//   health:   every interval, probe each backend; after `unhealthy_after` failed probes remove
//             it from rotation. Until then, requests sent to a dead backend fail.
#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Policy { round_robin, least_connections, p2c, weighted_round_robin, ip_hash };

struct Backend {
  bool alive = true;
  bool in_rotation = true;
  double speed = 1;        // service time is divided by this
  double slow_factor = 1;  // slow_backend fault
  int busy = 0;            // requests in service
  std::deque<Request> queue;
  std::int64_t served = 0;
  int failed_checks = 0;
  double wrr_current = 0;  // smooth weighted round robin state
  int outstanding() const { return busy + static_cast<int>(queue.size()); }
};

/// A request in service on a backend. Events refer to it by (slot, generation), so that an
/// event outliving its request (the backend was killed) is recognised and ignored.
struct InService {
  Request request;
  std::uint32_t backend = 0;
  std::uint32_t generation = 0;
  bool active = false;
};

class Balancer final : public System {
 public:
  Balancer(Policy policy, const Params& p, Context& ctx)
      : policy_(policy),
        ctx_(ctx),
        workers_(static_cast<int>(p.integer("workers"))),
        queue_limit_(static_cast<std::size_t>(p.integer("queue_limit"))),
        health_checks_(p.boolean("health_checks")),
        check_interval_(p.duration("health_check_interval")),
        unhealthy_after_(static_cast<int>(p.integer("unhealthy_after"))),
        in_rotation_metric_(ctx.metric("backends_in_rotation")),
        dead_errors_metric_(ctx.metric("dead_backend_errors")),
        removals_metric_(ctx.metric("health_check_removals")) {
    const auto speeds = p.numbers("speeds");
    const auto n = static_cast<std::size_t>(p.integer("backends"));
    if (!speeds.empty() && speeds.size() != n)
      throw std::invalid_argument("speeds must list one speed per backend (" + std::to_string(n) +
                                  "), got " + std::to_string(speeds.size()));
    for (std::size_t i = 0; i < n; ++i) add_backend(speeds.empty() ? 1.0 : speeds[i]);
    if (health_checks_) ctx_.after(check_interval_, [this] { health_check(); });
  }

  void handle(const Request& r) override {
    if (rotation_.empty()) return ctx_.complete(r, Outcome::error);
    const std::uint32_t b = pick(r);
    Backend& backend = backends_[b];
    if (!backend.alive) {  // connection refused: fails at once
      ++refused_by_dead_;
      dead_errors_metric_.add(1);
      return ctx_.complete(r, Outcome::error);
    }
    if (backend.busy < workers_) return start(b, r);
    if (backend.queue.size() >= queue_limit_) return ctx_.complete(r, Outcome::rejected);
    backend.queue.push_back(r);
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "add_backend") return add_backend(p["speed"].as_double());
    Backend& b = backend_at(p["backend"].as_int());
    const auto index = static_cast<std::uint32_t>(p["backend"].as_int());
    if (fault == "kill_backend") {
      if (!b.alive) return;
      b.alive = false;
      for (std::uint32_t s = 0; s < pool_.size(); ++s)  // in-flight requests die with it
        if (pool_[s].active && pool_[s].backend == index) {
          lost_in_flight_++;
          ctx_.complete(pool_[s].request, Outcome::error);
          release(s);
        }
      for (const Request& r : b.queue) {
        lost_in_flight_++;
        ctx_.complete(r, Outcome::error);
      }
      dead_errors_metric_.add(static_cast<double>(b.busy + b.queue.size()));
      b.queue.clear();
      b.busy = 0;
    } else if (fault == "restart_backend") {
      b.alive = true;
      b.slow_factor = 1;
    } else if (fault == "slow_backend") {
      b.slow_factor = p["factor"].as_double();
    }
  }

  Value call(const std::string& op, const Value&) override {
    List out;
    if (op == "backends")
      for (const Backend& b : backends_)
        out.push_back(Map{{"alive", b.alive},
                          {"in_rotation", b.in_rotation},
                          {"outstanding", b.outstanding()},
                          {"served", b.served},
                          {"speed", b.speed}});
    return out;
  }

  Map figures() const override {
    std::int64_t most = 0, total = 0;
    for (const Backend& b : backends_) most = std::max(most, b.served), total += b.served;
    const double mean = backends_.empty() ? 0 : static_cast<double>(total) / backends_.size();
    return {{"refused_by_dead", refused_by_dead_},
            {"lost_in_flight", lost_in_flight_},
            {"removed_by_check", removed_},
            {"max_over_mean_load", mean > 0 ? most / mean : 0.0}};
  }

 private:
  Backend& backend_at(std::int64_t index) {
    if (index < 0 || index >= static_cast<std::int64_t>(backends_.size()))
      throw std::invalid_argument("backend " + std::to_string(index) + " does not exist (0.." +
                                  std::to_string(backends_.size() - 1) + ")");
    return backends_[static_cast<std::size_t>(index)];
  }

  void add_backend(double speed) {
    backends_.emplace_back().speed = speed;
    rebuild_rotation();
  }

  void rebuild_rotation() {
    rotation_.clear();
    for (std::uint32_t i = 0; i < backends_.size(); ++i)
      if (backends_[i].in_rotation) rotation_.push_back(i);
    in_rotation_metric_.set(static_cast<double>(rotation_.size()));
  }

  std::uint32_t pick(const Request& r) {
    const std::size_t n = rotation_.size();
    switch (policy_) {
      case Policy::round_robin:
        return rotation_[next_++ % n];
      case Policy::least_connections: {
        // Scan from a rotating start so that ties are spread instead of piling on backend 0.
        const std::size_t start = next_++ % n;
        std::uint32_t best = rotation_[start];
        for (std::size_t k = 1; k < n; ++k) {
          const std::uint32_t c = rotation_[(start + k) % n];
          if (backends_[c].outstanding() < backends_[best].outstanding()) best = c;
        }
        return best;
      }
      case Policy::p2c: {
        if (n == 1) return rotation_[0];
        const std::uint64_t i = ctx_.rng().below(n);
        std::uint64_t j = ctx_.rng().below(n - 1);
        if (j >= i) ++j;
        const std::uint32_t a = rotation_[i], b = rotation_[j];
        return backends_[b].outstanding() < backends_[a].outstanding() ? b : a;
      }
      case Policy::weighted_round_robin: {
        double total = 0;
        std::uint32_t best = rotation_[0];
        for (std::uint32_t c : rotation_) {
          backends_[c].wrr_current += backends_[c].speed;
          total += backends_[c].speed;
          if (backends_[c].wrr_current > backends_[best].wrr_current) best = c;
        }
        backends_[best].wrr_current -= total;
        return best;
      }
      case Policy::ip_hash:
        return rotation_[Rng::hash(r.client) % n];
    }
    return rotation_[0];
  }

  void start(std::uint32_t b, const Request& r) {
    Backend& backend = backends_[b];
    ++backend.busy;
    std::uint32_t slot;
    if (free_.empty()) {
      slot = static_cast<std::uint32_t>(pool_.size());
      pool_.emplace_back();
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    InService& s = pool_[slot];
    s.request = r;
    s.backend = b;
    s.active = true;
    const double work = static_cast<double>(r.service) / backend.speed * backend.slow_factor;
    ctx_.after(static_cast<Time>(work),
               [this, slot, generation = s.generation] { finish(slot, generation); });
  }

  void release(std::uint32_t slot) {
    pool_[slot].active = false;
    ++pool_[slot].generation;
    free_.push_back(slot);
  }

  void finish(std::uint32_t slot, std::uint32_t generation) {
    if (pool_[slot].generation != generation) return;  // its backend died meanwhile
    const std::uint32_t b = pool_[slot].backend;
    ctx_.complete(pool_[slot].request, Outcome::ok);
    release(slot);
    Backend& backend = backends_[b];
    --backend.busy;
    ++backend.served;
    if (!backend.queue.empty()) {
      const Request next = backend.queue.front();
      backend.queue.pop_front();
      start(b, next);
    }
  }

  void health_check() {
    bool changed = false;
    for (std::uint32_t i = 0; i < backends_.size(); ++i) {
      Backend& b = backends_[i];
      if (b.alive) {
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
  bool health_checks_;
  Time check_interval_;
  int unhealthy_after_;
  Metric& in_rotation_metric_;
  Metric& dead_errors_metric_;
  Metric& removals_metric_;
  std::vector<Backend> backends_;
  std::vector<std::uint32_t> rotation_;
  std::vector<InService> pool_;
  std::vector<std::uint32_t> free_;
  std::uint64_t next_ = 0;
  std::int64_t refused_by_dead_ = 0, lost_in_flight_ = 0, removed_ = 0;
};

class LoadBalancing final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const LessonInfo info{
        "load_balancing",
        "Load balancing: spreading requests over backends",
        "Round robin sends every backend the same share whatever its state. With heavy-tailed "
        "service times a backend stuck on a slow request keeps receiving work, requests queue "
        "behind it and P99 explodes; a dead backend keeps receiving its share until a health "
        "check notices.",
        "Pick by load: least connections (fewest outstanding requests) or the power of two "
        "random choices (the less loaded of two random backends, nearly as good with O(1) "
        "state); weight by capacity; remove dead backends after failed health checks.",
        {"NGINX (round_robin, least_conn, ip_hash, random two least_conn)",
         "HAProxy (roundrobin, leastconn, source)", "Envoy (least request = P2C)",
         "AWS ALB/NLB health checks"},
        {{"round_robin", true, "each backend in turn, blind to load"},
         {"least_connections", false, "the backend with the fewest outstanding requests"},
         {"p2c", false, "power of two choices: the less loaded of two random backends"},
         {"weighted_round_robin", false, "smooth weighted round robin by backend speed"},
         {"ip_hash", false, "hash of the client id: session affinity, not load-aware"}},
        {{"backends", ParamType::integer, 10, "number of backends", 1, 10000},
         {"workers", ParamType::integer, 1, "requests a backend serves at once", 1, 100000},
         {"queue_limit", ParamType::integer, 100000, "waiting requests per backend before 503s", 0,
          1e9},
         {"speeds", ParamType::number_list, List{}, "relative speed per backend (default all 1)",
          1e-6, 1e6},
         {"health_checks", ParamType::boolean, true, "probe backends and remove dead ones"},
         {"health_check_interval", ParamType::duration, "5s", "time between probes", 1e-3, 3600},
         {"unhealthy_after", ParamType::integer, 2, "failed probes before removal", 1, 1000}},
        {{"kill_backend",
          "the backend dies: in-flight requests fail, new ones are refused",
          {{"backend", ParamType::integer, Value(), "backend index", 0, 1e6}}},
         {"restart_backend",
          "the backend comes back (health checks put it back in rotation)",
          {{"backend", ParamType::integer, Value(), "backend index", 0, 1e6}}},
         {"slow_backend",
          "multiply one backend's service time",
          {{"backend", ParamType::integer, Value(), "backend index", 0, 1e6},
           {"factor", ParamType::real, 10.0, "service time multiplier", 1e-6, 1e6}}},
         {"add_backend",
          "add a backend to the pool (scale out)",
          {{"speed", ParamType::real, 1.0, "relative speed", 1e-6, 1e6}}}},
        {{"backends",
          "state of every backend: alive, in_rotation, outstanding, served, speed",
          {}}},
        {{"backends_in_rotation", MetricSpec::Kind::gauge, "backends the balancer routes to"},
         {"dead_backend_errors", MetricSpec::Kind::counter, "requests failed by a dead backend"},
         {"health_check_removals", MetricSpec::Kind::counter,
          "backends removed by health checks"}}};
    return info;
  }

  std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                Context& ctx) const override {
    static const std::pair<const char*, Policy> policies[] = {
        {"round_robin", Policy::round_robin},
        {"least_connections", Policy::least_connections},
        {"p2c", Policy::p2c},
        {"weighted_round_robin", Policy::weighted_round_robin},
        {"ip_hash", Policy::ip_hash}};
    return std::make_unique<Balancer>(variant_value(variant, policies), params, ctx);
  }
};

}  // namespace

HLDLAB_PLUGIN(LoadBalancing)
