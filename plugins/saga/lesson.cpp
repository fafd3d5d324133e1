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
// A step fails when a hash of the order says so for the configured step and rate, so every
// variant sees the same orders fail at the same step. An order is inconsistent when it ends with
// some but not all of its steps' effects in place.
#include <string>
#include <utility>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Mode { no_compensation, orchestration, choreography, two_phase_commit };
constexpr int kSteps = 4;
constexpr std::uint8_t kAllEffects = (1u << kSteps) - 1;
const char* const kStepNames[kSteps] = {"order", "inventory", "payment", "shipping"};

struct Order {
  Request request;
  int fail_at = -1;          // the step that fails for this order, -1: none
  int step = 0;              // the step running (forward) or being compensated (backward)
  std::uint8_t effects = 0;  // bit k: step k's effect is in place
  bool compensating = false;
  std::int64_t messages = 0, compensations = 0;  // counted in the figures when it ends
};

class Saga final : public System {
 public:
  Saga(Mode mode, const Params& p, Context& ctx)
      : mode_(mode),
        ctx_(ctx),
        hop_(p.duration("hop")),
        fail_step_(p.integer<int>("fail_step")),
        fail_rate_(p.real("fail_rate")),
        // The lesson's stream is the same in every variant: so are the orders that fail.
        fail_salt_(ctx.rng().next()),
        inconsistent_metric_(ctx.metric("inconsistent_orders")),
        blocked_metric_(ctx.metric("blocked_participants")) {}

  void handle(const Request& r) override {
    // Nobody to run the transaction.
    if (coordinator_down() && mode_ != Mode::choreography)
      return ctx_.complete(r, Outcome::rejected);
    const SlotHandle h = orders_.acquire();
    orders_[h] = Order{r, fails(r) ? fail_step_ : -1};
    if (mode_ == Mode::two_phase_commit) {
      // Prepare goes to all four participants at once; the votes come back after one round trip
      // plus the participants' work.
      orders_[h].messages += 2 * kSteps;
      return schedule(h, hop_ + r.service + hop_);
    }
    schedule(h, step_time(r));
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
      if (ctx_.tracing()) ctx_.trace_event(0, "crash");
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

  /// From now on the figures count the orders arriving from now on, as the runtime does.
  void reset_stats() override {
    failed_ = inconsistent_ = compensations_ = messages_ = blocked_participants_ = 0;
    blocked_seconds_ = 0;
    counting_from_ = ctx_.now();
  }

 private:
  bool coordinator_down() const { return ctx_.now() < down_until_; }

  bool fails(const Request& r) const {
    return fail_step_ >= 0 && Rng::uniform_at(fail_salt_, r.id, 0) < fail_rate_;
  }

  /// Time of one step (or one compensation) as seen by the caller.
  Time step_time(const Request& r) const {
    // Orchestration: request and reply hops. Choreography: one event to the next service.
    // No compensation: a plain call chain, like orchestration.
    return mode_ == Mode::choreography ? r.service + hop_ : hop_ + r.service + hop_;
  }

  void schedule(SlotHandle h, Time delay) {
    ctx_.after(delay, [this, h] { advance(h); });
  }

  /// The current step (or compensation, or 2PC vote round) of an order has finished.
  void advance(SlotHandle h) {
    if (ctx_.tracing() && mode_ != Mode::two_phase_commit && !resuming_) trace_step(orders_[h]);
    if (mode_ == Mode::two_phase_commit) return decide(h);
    if (mode_ != Mode::choreography && coordinator_down()) {
      // The reply reaches a dead orchestrator; its saga log resumes the order at recovery.
      // The services committed their local step: nothing is locked meanwhile.
      deferred_.push_back(h);
      return;
    }
    Order& o = orders_[h];
    o.messages += mode_ == Mode::choreography ? 1 : 2;
    if (o.compensating) {
      o.effects &= static_cast<std::uint8_t>(~(1u << o.step));
      ++o.compensations;
      if (--o.step < 0) return finish(h, Outcome::error);
      return schedule(h, step_time(o.request));
    }
    if (o.step == o.fail_at) {  // step k failed: its own effect never happened
      if (mode_ == Mode::no_compensation || o.step == 0) return finish(h, Outcome::error);
      o.compensating = true;
      --o.step;
      return schedule(h, step_time(o.request));
    }
    o.effects |= static_cast<std::uint8_t>(1u << o.step);
    if (++o.step == kSteps) return finish(h, Outcome::ok);
    schedule(h, step_time(o.request));
  }

  /// 2PC: the votes are in. Commit if all voted yes, else abort; a dead coordinator decides
  /// nothing and the participants that voted yes wait, locked, for it to come back.
  void decide(SlotHandle h) {
    if (ctx_.tracing())
      for (int k = 0; k < kSteps; ++k)
        ctx_.trace_message(k + 1, 0, ctx_.now() - hop_,
                           std::string(orders_[h].fail_at == k ? "vote no" : "vote yes") +
                               (coordinator_down() ? " (coordinator down: lost)" : ""));
    if (coordinator_down()) {
      in_doubt_.emplace_back(h, ctx_.now());
      return;
    }
    Order& o = orders_[h];
    o.messages += 2 * kSteps;                              // commit/abort and the acknowledgements
    if (o.fail_at >= 0) return finish(h, Outcome::error);  // abort: nothing was applied
    o.effects = kAllEffects;
    finish(h, Outcome::ok);
  }

  /// The message whose arrival is this event, on the space-time diagram (sys:trace{...}): node 0
  /// is the coordinator (orchestrator), nodes 1-4 the services. Orchestration: the step's reply
  /// reaches the orchestrator. Choreography: the step's event reaches the next service (forward)
  /// or the previous one (a failure or a compensation); none after the last.
  void trace_step(const Order& o) {
    const bool failing = !o.compensating && o.step == o.fail_at;
    const std::string what = std::string(kStepNames[o.step]) + (o.compensating ? " compensated"
                                                                : failing      ? " failed"
                                                                               : " done");
    const int from = o.step + 1;
    if (mode_ != Mode::choreography)
      return ctx_.trace_message(from, 0, ctx_.now() - hop_,
                                what + (coordinator_down() ? " (orchestrator down: lost)" : ""));
    const int to = o.compensating || failing ? o.step : o.step + 2;
    if (to >= 1 && to <= kSteps) ctx_.trace_message(from, to, ctx_.now() - hop_, what);
  }

  void recover() {
    if (ctx_.tracing()) ctx_.trace_event(0, "recover");
    ctx_.log("coordinator recovered: " + std::to_string(in_doubt_.size()) +
             " transactions in doubt, " + std::to_string(deferred_.size()) + " sagas to resume");
    // 2PC with presumed abort: no commit record was written, so the in-doubt ones abort.
    for (const auto& [h, since] : in_doubt_) {
      Order& o = orders_[h];
      if (counted(o)) {
        const std::int64_t yes = o.fail_at >= 0 ? kSteps - 1 : kSteps;
        blocked_participants_ += yes;
        blocked_metric_.add(static_cast<double>(yes));
        blocked_seconds_ += static_cast<double>(yes) * to_seconds(ctx_.now() - since);
      }
      o.messages += 2 * kSteps;
      finish(h, Outcome::error);
    }
    in_doubt_.clear();
    std::vector<SlotHandle> resume;
    resume.swap(deferred_);
    resuming_ = true;  // the replies arrived before: not traced again
    for (SlotHandle h : resume) advance(h);
    resuming_ = false;
  }

  bool counted(const Order& o) const { return o.request.arrival >= counting_from_; }

  void finish(SlotHandle h, Outcome outcome) {
    const Order& o = orders_[h];
    if (counted(o)) {
      if (outcome != Outcome::ok) ++failed_;
      if (o.effects != 0 && o.effects != kAllEffects) {
        ++inconsistent_;
        inconsistent_metric_.add(1);
      }
      messages_ += o.messages;
      compensations_ += o.compensations;
    }
    ctx_.complete(o.request, outcome);
    orders_.release(h);
  }

  Mode mode_;
  Context& ctx_;
  Time hop_;
  int fail_step_;
  double fail_rate_;
  std::uint64_t fail_salt_;
  Metric& inconsistent_metric_;
  Metric& blocked_metric_;
  SlotPool<Order> orders_;
  std::vector<SlotHandle> deferred_;                   // sagas waiting for the orchestrator
  std::vector<std::pair<SlotHandle, Time>> in_doubt_;  // 2PC orders, since when
  Time down_until_ = -1;
  bool resuming_ = false;  // recover() resumes the deferred sagas
  Time counting_from_ = 0;
  std::int64_t failed_ = 0, inconsistent_ = 0, compensations_ = 0, messages_ = 0;
  std::int64_t blocked_participants_ = 0;
  double blocked_seconds_ = 0;
};

LessonInfo info() {
  return {
      "saga",
      "Sagas: a transaction across services without a distributed lock",
      "An order touches four services (order, inventory, payment, shipping), each with its own "
      "database. Calling them in a row and stopping at the first failure leaves the earlier "
      "steps done: stock reserved and cards charged for orders that failed. Two-phase commit "
      "makes it atomic, but every participant locks until the coordinator decides: when the "
      "coordinator crashes after the votes, they stay blocked.",
      "A saga: a sequence of local transactions, each with a compensating action. When step k "
      "fails, compensate steps k-1 ... 0 in reverse order (release stock, refund, cancel). "
      "Orchestration: one orchestrator drives the steps and compensations from a durable log. "
      "Choreography: services react to each other's events, no central coordinator.",
      {"Uber Cadence / Temporal workflows", "AWS Step Functions saga pattern",
       "Axon / Eventuate sagas", "XA / two-phase commit in databases and JTA"},
      {{"no_compensation", true, "call the steps in a row, stop at the first failure"},
       {"two_phase_commit", true, "prepare all, then commit or abort; blocks on coordinator crash"},
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
        "2PC participants left in doubt, holding locks, by a coordinator crash"}},
      {{"failed", Unit::count, "orders that ended in an error (a failed step, an abort)"},
       {"inconsistent", Unit::count, "orders that ended with some but not all steps applied"},
       {"compensations", Unit::count, "compensating actions run (release, refund, cancel)"},
       {"messages", Unit::count, "messages sent between the services and the coordinator"},
       {"blocked_participants", Unit::count,
        "2PC participants left in doubt, holding locks, by a coordinator crash"},
       {"blocked_s", Unit::seconds, "participant-seconds spent in doubt, holding locks"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Mode> modes[] = {{"no_compensation", Mode::no_compensation},
                                                       {"two_phase_commit", Mode::two_phase_commit},
                                                       {"orchestration", Mode::orchestration},
                                                       {"choreography", Mode::choreography}};
  return std::make_unique<Saga>(variant_value(variant, modes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
