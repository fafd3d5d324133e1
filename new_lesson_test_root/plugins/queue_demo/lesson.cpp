// queue_demo: TODO one line on the concept.
//
//   problem:  a server with an unbounded queue accepts everything; under overload the queue
//             grows without end and every request waits behind it (P99 explodes).
//   fix:      shed load: reject (503) when the queue is longer than `queue_limit`, so the
//             requests that are accepted keep a bounded latency.
#include <algorithm>

#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;

class Shop final : public System {
 public:
  Shop(bool shed, const Params& p, Context& ctx)
      : ctx_(ctx),
        shed_metric_(ctx.metric("shed")),
        // The SDK's queueing server: workers, a FIFO queue, slow-down, kill and restart.
        server_(ctx,
                {.workers = static_cast<int>(p.integer("workers")),
                 .queue_limit = shed ? static_cast<std::size_t>(p.integer("queue_limit"))
                                     : Server<Request>::Options{}.queue_limit},
                [this](Request& r) { ctx_.complete(r, Outcome::ok); }) {}

  void handle(const Request& r) override {
    if (server_.submit(r, r.service) == Admission::rejected) {
      ++shed_;
      shed_metric_.add(1);
      return ctx_.complete(r, Outcome::rejected);
    }
    max_queue_ = std::max<std::int64_t>(max_queue_, static_cast<std::int64_t>(server_.queued()));
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "slowdown") server_.set_slow(p["factor"].as_double());
  }

  Map figures() const override { return {{"max_queue", max_queue_}, {"shed", shed_}}; }
  void reset_stats() override { max_queue_ = shed_ = 0; }

 private:
  Context& ctx_;
  Metric& shed_metric_;
  Server<Request> server_;
  std::int64_t max_queue_ = 0, shed_ = 0;
};

LessonInfo info() {
  return {"queue_demo",
          "TODO: title",
          "An unbounded queue accepts every request; under overload everyone waits.",
          "Shed load: reject beyond a queue limit so accepted requests stay fast.",
          {"TODO: where this is used in production"},
          {{"unbounded_queue", true, "accept everything"},
           {"load_shedding", false, "reject when the queue is full"}},
          {{"workers", ParamType::integer, 4, "requests served at once", 1, 100000},
           {"queue_limit", ParamType::integer, 20, "queue length before shedding", 0, 1e9}},
          {{"slowdown",
            "multiply the service time",
            {{"factor", ParamType::real, 5.0, "multiplier", 1, 1e6}}}},
          {},
          {{"shed", MetricSpec::Kind::counter, "requests rejected by load shedding"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  return std::make_unique<Shop>(variant == "load_shedding", params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
