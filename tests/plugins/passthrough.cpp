// The smallest lesson: completes every request at once. Used by tests and benchmarks to
// measure the runtime itself. The "faulty" variant throws on the 100th request, and
// "throws_in_build" from its factory. The operation "background" starts work that outlives
// the requests (Context::hold / release).
#include "hldlab/fifo.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

class PassThrough final : public System {
 public:
  PassThrough(Context& ctx, bool faulty, Time delay, bool negative_delay)
      : ctx_(ctx), faulty_(faulty), negative_delay_(negative_delay), delay_(delay) {}
  void handle(const Request& r) override {
    if (negative_delay_) ctx_.after(-5, [] {});
    if (++seen_ == 100 && faulty_) throw std::runtime_error("deliberate failure on request 100");
    if (delay_ == 0) return ctx_.complete(r, r.key % 2 ? Outcome::hit : Outcome::miss);
    pending_.push_back(r);
    ctx_.after(delay_, [this] { ctx_.complete(pending_.pop_front(), Outcome::ok); });
  }
  Value call(const std::string& op, const Value& args) override {
    if (op == "echo") return args;
    if (op == "ping") return seen_;
    if (op == "background") {  // hold: done `after` later unless held = false
      const Time after = args["after"].as_int();
      const bool held = args["held"].as_bool();
      if (held) ctx_.hold();
      ctx_.after(after, [this, held] {
        ++background_done_;
        if (held) ctx_.release();
      });
      return {};
    }
    if (op == "release") {
      ctx_.release();
      return {};
    }
    return System::call(op, args);
  }
  Map figures() const override { return {{"seen", seen_}, {"background_done", background_done_}}; }
  void reset_stats() override { seen_ = background_done_ = 0; }

 private:
  Context& ctx_;
  bool faulty_, negative_delay_;
  Time delay_;
  std::int64_t seen_ = 0, background_done_ = 0;
  Fifo<Request> pending_;
};

class PassThroughLesson final : public Lesson {
 public:
  const LessonInfo& info() const override {
    static const LessonInfo info{
        "passthrough",
        "Pass-through (runtime test lesson)",
        "none",
        "none",
        {},
        {{"instant", true, "complete every request at once (odd keys hit)"},
         {"delayed", false, "complete every request after `delay`"},
         {"faulty", false, "throws while handling the 100th request"},
         {"throws_in_build", false, "its factory throws"},
         {"negative_delay", false, "schedules an event with a negative delay"}},
        {{"delay", ParamType::duration, "1ms", "delay of the delayed variant", 0, 60},
         {"label_text", ParamType::string, "x", "a string parameter", 0, 0, {"x", "y"}},
         {"weights", ParamType::number_list, List{}, "a list parameter", 0, 10},
         {"count", ParamType::integer, 0, "an integer parameter", 0, 1e19}},
        {{"noop", "does nothing", {}}},
        {{"echo", "returns its arguments", {{"text", ParamType::string, "", "anything"}}},
         {"ping", "returns the number of requests seen (no arguments)", {}},
         {"background",
          "work done `after` from now, held (Context::hold) unless held = false",
          {{"after", ParamType::duration, "1s", "when", 0, 3600},
           {"held", ParamType::boolean, true, "hold the experiment until it is done"}}},
         {"release", "a release() without hold()", {}}},
        {{"things", MetricSpec::Kind::counter, "a counter"},
         {"per_shard", MetricSpec::Kind::gauge, "a labelled gauge", "shard", {"0", "1"}}},
        {{"seen", Unit::count, "requests handled"},
         {"background_done", Unit::count, "background work finished"}},
        /*uses_service_time=*/false};
    return info;
  }
  std::unique_ptr<System> build(const std::string& variant, const Params& p,
                                Context& ctx) const override {
    if (variant == "throws_in_build") throw std::runtime_error("factory exploded");
    return std::make_unique<PassThrough>(ctx, variant == "faulty",
                                         variant == "delayed" ? p.duration("delay") : 0,
                                         variant == "negative_delay");
  }
};

}  // namespace

HLDLAB_PLUGIN(PassThroughLesson)
