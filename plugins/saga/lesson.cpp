// Sagas: one order spans four services, each with its own database.
//
//   order -> inventory -> payment -> shipping         (step k = 0, 1, 2, 3)
//
//   problem:  no_compensation: call each step; if step k fails, stop.
//               steps 0..k-1 stay done: stock reserved, card charged, for an order that failed.
//             two_phase_commit: prepare all four (they lock), then commit or abort.
//               atomic, but if the coordinator crashes after the votes, every participant that
//               voted yes stays blocked holding its locks until the coordinator comes back.
//   fix:      orchestration: an orchestrator calls the steps; if step k fails it runs the
//               compensations k-1, ..., 0 (release, refund, cancel) in reverse order.
//             choreography: each service reacts to the previous one's event; a failure event
//               travels back and each service compensates its own step, in reverse order.
//
// A step fails when hash(order) says so for the configured step and rate, so every variant
// sees the same orders fail at the same step. An order is inconsistent when it ends with some
// but not all of its steps' effects in place.
#include <algorithm>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Mode { no_compensation, orchestration, choreography, two_phase_commit };
constexpr int kSteps = 4;
const char* const kStepNames[kSteps] = {"order", "inventory", "payment", "shipping"};

struct Order {
  Request request;
  int step = 0;              // the step running (forward) or being compensated (backward)
  int fail_at = -1;          // the step that fails for this order, -1: none
  std::uint8_t effects = 0;  // bit k: step k's effect is in place
  bool compensating = false;
  bool active = false;
  std::uint32_t generation = 0;
};

class Saga final : public System {
 public:
  Saga(Mode mode, const Params& p, Context& ctx)
      : mode_(mode),
        ctx_(ctx),
        hop_(p.duration("hop")),
        fail_step_(static_cast<int>(p.integer("fail_step"))),
        fail_rate_(p.real("fail_rate")),
        inconsistent_metric_(ctx.metric("inconsistent_orders")),
        blocked_metric_(ctx.metric("blocked_participants")) {}

  void handle(const Request& r) override {
    // Nobody to run the transaction.
    if (coordinator_down() && mode_ != Mode::choreography)
      return ctx_.complete(r, Outcome::rejected);
    const std::uint32_t slot = allocate();
    Order& o = orders_[slot];
    o.request = r;
    o.step = 0;
    o.effects = 0;
    o.compensating = false;
    o.fail_at = fails(r) ? fail_step_ : -1;
    if (mode_ == Mode::two_phase_commit) {
      // Prepare goes to all four participants at once; the votes come back after one round trip
      // plus the participants' work.
      messages_ += 2 * kSteps;
      schedule(slot, hop_ + r.service + hop_);
    } else {
      schedule(slot, step_time(r));
    }
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "fail_step") {
      fail_step_ = static_cast<int>(p["step"].as_int());
      fail_rate_ = p["rate"].as_double();
      ctx_.log("step " + std::to_string(fail_step_) + " (" + kStepNames[fail_step_] +
               ") now fails " + std::to_string(fail_rate_ * 100) + "% of orders");
    } else if (fault == "crash_coordinator") {
      if (mode_ == Mode::choreography) {
        ctx_.log("choreography has no coordinator: nothing to crash");
        return;
      }
      if (coordinator_down()) return;
      down_until_ = ctx_.now() + p["for"].as_int();
      ctx_.log("coordinator crashed until " + std::to_string(to_seconds(down_until_)) + " s");
      ctx_.after(p["for"].as_int(), [this] { recover(); });
    }
  }

  Map figures() const override {
    return {{"failed", failed_},
            {"inconsistent", inconsistent_},
            {"compensations", compensations_},
            {"messages", messages_},
            {"blocked_participants", blocked_participants_},
            {"blocked_s", blocked_seconds_}};
  }

 private:
  bool coordinator_down() const { return ctx_.now() < down_until_; }

  bool fails(const Request& r) const {
    if (fail_step_ < 0 || fail_rate_ <= 0) return false;
    std::uint64_t x = r.id * 0x9E3779B97F4A7C15ULL ^ static_cast<std::uint64_t>(r.arrival);
    const double u = static_cast<double>(Rng::splitmix64(x) >> 11) * 0x1.0p-53;
    return u < fail_rate_;
  }

  /// Time of one step (or one compensation) as seen by the caller.
  Time step_time(const Request& r) const {
    // Orchestration: request and reply hops. Choreography: one event to the next service.
    // No compensation: a plain call chain, like orchestration.
    return mode_ == Mode::choreography ? r.service + hop_ : hop_ + r.service + hop_;
  }

  std::uint32_t allocate() {
    std::uint32_t slot;
    if (free_.empty()) {
      slot = static_cast<std::uint32_t>(orders_.size());
      orders_.emplace_back();
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    orders_[slot].active = true;
    return slot;
  }

  void schedule(std::uint32_t slot, Time delay) {
    ctx_.after(delay, [this, slot, g = orders_[slot].generation] { advance(slot, g); });
  }

  /// The current step (or compensation, or 2PC vote round) of an order has finished.
  void advance(std::uint32_t slot, std::uint32_t generation) {
    Order& o = orders_[slot];
    if (!o.active || o.generation != generation) return;
    if (mode_ == Mode::two_phase_commit) return decide(slot);
    if (mode_ != Mode::choreography && coordinator_down()) {
      // The reply reaches a dead orchestrator; its saga log resumes the order at recovery.
      // The services committed their local step: nothing is locked meanwhile.
      deferred_.push_back(slot);
      return;
    }
    messages_ += mode_ == Mode::choreography ? 1 : 2;
    if (o.compensating) {
      o.effects &= static_cast<std::uint8_t>(~(1u << o.step));
      ++compensations_;
      if (--o.step < 0) return finish(slot, Outcome::error);
      return schedule(slot, step_time(o.request));
    }
    if (o.step == o.fail_at) {  // step k failed: its own effect never happened
      if (mode_ == Mode::no_compensation || o.step == 0) return finish(slot, Outcome::error);
      o.compensating = true;
      --o.step;
      return schedule(slot, step_time(o.request));
    }
    o.effects |= static_cast<std::uint8_t>(1u << o.step);
    if (++o.step == kSteps) return finish(slot, Outcome::ok);
    schedule(slot, step_time(o.request));
  }

  /// 2PC: the votes are in. Commit if all voted yes, else abort; a dead coordinator decides
  /// nothing and the participants that voted yes wait, locked, for it to come back.
  void decide(std::uint32_t slot) {
    Order& o = orders_[slot];
    if (coordinator_down()) {
      in_doubt_.push_back({slot, ctx_.now()});
      return;
    }
    messages_ += 2 * kSteps;  // commit/abort and the acknowledgements
    if (o.fail_at >= 0) return finish(slot, Outcome::error);  // abort: nothing was applied
    o.effects = (1u << kSteps) - 1;
    finish(slot, Outcome::ok);
  }

  void recover() {
    ctx_.log("coordinator recovered: " + std::to_string(in_doubt_.size()) +
             " transactions in doubt, " + std::to_string(deferred_.size()) + " sagas to resume");
    // 2PC with presumed abort: no commit record was written, so the in-doubt ones abort.
    for (const auto& [slot, since] : in_doubt_) {
      const std::int64_t yes = orders_[slot].fail_at >= 0 ? kSteps - 1 : kSteps;
      blocked_participants_ += yes;
      blocked_metric_.add(static_cast<double>(yes));
      blocked_seconds_ += static_cast<double>(yes) * to_seconds(ctx_.now() - since);
      messages_ += 2 * kSteps;
      finish(slot, Outcome::error);
    }
    in_doubt_.clear();
    std::vector<std::uint32_t> resume;
    resume.swap(deferred_);
    for (std::uint32_t slot : resume) advance(slot, orders_[slot].generation);
  }

  void finish(std::uint32_t slot, Outcome outcome) {
    Order& o = orders_[slot];
    if (outcome != Outcome::ok) ++failed_;
    const bool all = o.effects == (1u << kSteps) - 1;
    if (o.effects != 0 && !all) {
      ++inconsistent_;
      inconsistent_metric_.add(1);
    }
    ctx_.complete(o.request, outcome);
    o.active = false;
    ++o.generation;
    free_.push_back(slot);
  }

  Mode mode_;
  Context& ctx_;
  Time hop_;
  int fail_step_;
  double fail_rate_;
  Metric& inconsistent_metric_;
  Metric& blocked_metric_;
  std::vector<Order> orders_;
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> deferred_;
  std::vector<std::pair<std::uint32_t, Time>> in_doubt_;
  Time down_until_ = -1;
  std::int64_t failed_ = 0, inconsistent_ = 0, compensations_ = 0, messages_ = 0;
  std::int64_t blocked_participants_ = 0;
  double blocked_seconds_ = 0;
};

class SagaLesson final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const LessonInfo info{
        "saga",
        "Sagas: a transaction across services without a distributed lock",
        "An order touches four services (order, inventory, payment, shipping), each with its "
        "own database. Calling them in a row and stopping at the first failure leaves the "
        "earlier steps done: stock reserved and cards charged for orders that failed. Two-phase "
        "commit makes it atomic, but every participant locks until the coordinator decides: "
        "when the coordinator crashes after the votes, they stay blocked.",
        "A saga: a sequence of local transactions, each with a compensating action. When step k "
        "fails, compensate steps k-1 ... 0 in reverse order (release stock, refund, cancel). "
        "Orchestration: one orchestrator drives the steps and compensations from a durable log. "
        "Choreography: services react to each other's events, no central coordinator.",
        {"Uber Cadence / Temporal workflows", "AWS Step Functions saga pattern",
         "Axon / Eventuate sagas", "XA / two-phase commit in databases and JTA"},
        {{"no_compensation", true, "call the steps in a row, stop at the first failure"},
         {"two_phase_commit", true,
          "prepare all, then commit or abort; blocks on coordinator crash"},
         {"orchestration", false, "orchestrator runs the steps, compensates in reverse on failure"},
         {"choreography", false, "event-driven steps; failure event triggers compensations"}},
        {{"hop", ParamType::duration, "1ms", "one-way network delay of a message", 0, 60},
         {"fail_step", ParamType::integer, 2,
          "step that fails: 0 order, 1 inventory, 2 payment, 3 shipping, -1 none", -1, 3},
         {"fail_rate", ParamType::real, 0.1, "fraction of orders whose fail_step fails", 0, 1}},
        {{"fail_step",
          "make a step fail for a fraction of the orders from now on",
          {{"step", ParamType::integer, 2, "0 order, 1 inventory, 2 payment, 3 shipping", 0, 3},
           {"rate", ParamType::real, 0.2, "fraction of orders", 0, 1}}},
         {"crash_coordinator",
          "the coordinator (2PC) or orchestrator crashes and restarts later",
          {{"for", ParamType::duration, "10s", "time until it restarts", 0, 3600}}}},
        {},
        {{"inconsistent_orders", MetricSpec::Kind::counter,
          "orders that ended with some but not all steps applied"},
         {"blocked_participants", MetricSpec::Kind::counter,
          "2PC participants left in doubt, holding locks, by a coordinator crash"}}};
    return info;
  }

  std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                Context& ctx) const override {
    static const std::pair<const char*, Mode> modes[] = {
        {"no_compensation", Mode::no_compensation},
        {"two_phase_commit", Mode::two_phase_commit},
        {"orchestration", Mode::orchestration},
        {"choreography", Mode::choreography}};
    for (const auto& [name, mode] : modes)
      if (variant == name) return std::make_unique<Saga>(mode, params, ctx);
    throw std::invalid_argument("unknown variant " + variant);
  }
};

}  // namespace

HLDLAB_PLUGIN(SagaLesson)
