// Snowflake ids: unique, roughly time-ordered ids without a central counter.
//
//   problem:  auto_increment on every master: id = ++counter[worker]
//             two masters hand out 1, 2, 3, ... independently -> the same id twice.
//   fix:      snowflake(worker):                       41-bit ms | 10-bit worker | 12-bit seq
//               ms = clock() in milliseconds
//               if ms < last:  clock went backwards -> wait (<= max_wait) or refuse, never reuse
//               if ms == last: seq += 1; seq == 4096 -> wait for the next millisecond
//               else:          seq = 0
//             sonyflake(worker): 39-bit time in 10 ms units | 8-bit seq | 16-bit machine id
//               (256 ids per 10 ms per machine, longer lifetime, more machines)
//   k-sorted: ids sorted numerically are sorted by generation time within the clock skew.
//
// Each request asks worker (client % workers) for one id. Every id is recorded (id, time) in
// one flat vector; duplicates and ordering are measured by sorting it at the end.
#include <algorithm>
#include <string>
#include <vector>

#include "hldlab/fifo.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Scheme { auto_increment, snowflake, sonyflake };
enum class Backwards { wait, refuse, ignore };
constexpr std::pair<const char*, Backwards> kBackwards[] = {
    {"wait", Backwards::wait}, {"refuse", Backwards::refuse}, {"ignore", Backwards::ignore}};

/// Virtual wall clocks start this far after the id epoch, so a clock set back stays positive.
constexpr Time kEpochOffset = seconds(3600);

struct Layout {
  Time unit;              // length of one time tick
  int sequence_bits;      // ids per tick per worker = 2^sequence_bits
  int worker_bits;        // workers supported = 2^worker_bits
  bool worker_below_seq;  // sonyflake puts the machine id in the low bits
  int time_shift() const { return sequence_bits + worker_bits; }
  int sequence_shift() const { return worker_below_seq ? worker_bits : 0; }
  int worker_shift() const { return worker_below_seq ? 0 : sequence_bits; }
};

struct Worker {
  Time skew = 0;  // this worker's clock minus true time
  std::int64_t last_tick = -1;
  std::int64_t sequence = 0;
  std::uint64_t counter = 0;           // auto_increment
  Fifo<Request> queue;                 // requests waiting behind a waiting generator
  std::int64_t pending_synthetic = 0;  // burst fault: ids to generate that are not requests
  bool waiting = false;
  std::int64_t ms_now = -1, in_this_ms = 0;  // ids per true millisecond
  std::int64_t issued = 0;
};

struct Issued {
  std::uint64_t id;
  Time at;
};

class Generator final : public System {
 public:
  Generator(Scheme scheme, const Params& p, Context& ctx)
      : scheme_(scheme),
        ctx_(ctx),
        workers_(p.integer<std::size_t>("workers")),
        layout_(scheme == Scheme::sonyflake ? Layout{milliseconds(10), 8, 16, true}
                                            : Layout{milliseconds(1), 12, 10, false}),
        backwards_(variant_value(p.string("on_backwards"), kBackwards)),
        max_wait_(p.duration("max_wait")),
        tolerance_(p.duration("order_tolerance")),
        waits_metric_(ctx.metric("waits")) {
    if (scheme != Scheme::auto_increment && workers_.size() > (1u << layout_.worker_bits))
      throw std::invalid_argument("workers must be at most " +
                                  std::to_string(1u << layout_.worker_bits) + " for this layout");
    issued_.reserve(1 << 16);
  }

  void handle(const Request& r) override {
    const std::size_t w = r.client % workers_.size();
    Worker& worker = workers_[w];
    if (worker.waiting || !worker.queue.empty() || !serve(w, &r)) worker.queue.push_back(r);
  }

  void inject(const std::string& fault, const Value& p) override {
    const std::int64_t w = p["worker"].as_int();
    if (w < 0 || w >= static_cast<std::int64_t>(workers_.size()))
      throw std::invalid_argument("worker " + std::to_string(w) + " does not exist (0.." +
                                  std::to_string(workers_.size() - 1) + ")");
    Worker& worker = workers_[static_cast<std::size_t>(w)];
    if (fault == "clock_backwards") {
      worker.skew -= p["by"].as_int();
      ctx_.log("worker " + std::to_string(w) + " clock set back by " +
               std::to_string(to_milliseconds(p["by"].as_int())) + " ms");
    } else if (fault == "burst") {
      worker.pending_synthetic += p["count"].as_int();
      if (!worker.waiting) drain(static_cast<std::size_t>(w));
    }
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "decode") {
      const auto id = static_cast<std::uint64_t>(args["id"].as_int());
      if (scheme_ == Scheme::auto_increment) return Map{{"counter", id}};
      const auto field = [id](int shift, int bits) {
        return (id >> shift) & ((std::uint64_t{1} << bits) - 1);
      };
      return Map{{"time_ticks", id >> layout_.time_shift()},
                 {"worker", field(layout_.worker_shift(), layout_.worker_bits)},
                 {"sequence", field(layout_.sequence_shift(), layout_.sequence_bits)}};
    }
    if (op == "workers") {
      List out;
      for (const Worker& w : workers_)
        out.push_back(Map{{"issued", w.issued},
                          {"skew_ms", to_milliseconds(w.skew)},
                          {"queued", static_cast<std::int64_t>(w.queue.size())}});
      return out;
    }
    if (op == "ids") {  // the last `n` ids issued, oldest first
      const auto n =
          std::min<std::size_t>(static_cast<std::size_t>(args.int_or("n", 10)), issued_.size());
      List out;
      for (std::size_t i = issued_.size() - n; i < issued_.size(); ++i)
        out.push_back(static_cast<std::int64_t>(issued_[i].id));
      return out;
    }
    throw std::invalid_argument("unknown operation '" + op + "'");
  }

  Map figures() const override {
    std::vector<Issued> sorted = issued_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Issued& a, const Issued& b) { return a.id < b.id; });
    std::int64_t duplicates = 0, out_of_order = 0;
    Time latest = 0;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      if (i > 0 && sorted[i].id == sorted[i - 1].id) ++duplicates;
      // k-sorted: an id is out of order if something generated more than `tolerance` after it
      // sorts before it.
      if (sorted[i].at + tolerance_ < latest) ++out_of_order;
      latest = std::max(latest, sorted[i].at);
    }
    return {
        {"ids", static_cast<std::int64_t>(issued_.size())},
        {"duplicates", duplicates},
        {"out_of_order", sorted.empty() ? 0.0 : static_cast<double>(out_of_order) / sorted.size()},
        {"max_ids_per_ms", max_per_ms_},
        {"waits", waits_},
        {"refused", refused_}};
  }

  void reset_stats() override {
    issued_.clear();
    max_per_ms_ = waits_ = refused_ = 0;
  }

 private:
  /// Try to give request `r` (nullptr: a synthetic burst id) an id now. False: the worker must
  /// wait; a wake-up is scheduled and `r` must stay queued.
  bool serve(std::size_t w, const Request* r) {
    Worker& worker = workers_[w];
    std::uint64_t id = 0;
    if (scheme_ == Scheme::auto_increment) {
      id = ++worker.counter;
    } else {
      const Time clock = ctx_.now() + kEpochOffset + worker.skew;
      const std::int64_t tick = clock / layout_.unit;
      const std::int64_t max_seq = (std::int64_t{1} << layout_.sequence_bits) - 1;
      if (tick < worker.last_tick && backwards_ != Backwards::ignore) {
        const Time wait = worker.last_tick * layout_.unit - clock;
        if (backwards_ == Backwards::refuse || wait > max_wait_) {
          ++refused_;
          if (r) ctx_.complete(*r, Outcome::rejected);
          return true;
        }
        sleep(w, wait);
        return false;
      }
      if (tick == worker.last_tick) {
        if (worker.sequence == max_seq) {  // sequence exhausted within this tick
          sleep(w, (tick + 1) * layout_.unit - clock);
          return false;
        }
        ++worker.sequence;
      } else {  // a new tick (or, with on_backwards=ignore, an old one reused: duplicates)
        worker.sequence = 0;
        worker.last_tick = tick;
      }
      const auto t = static_cast<std::uint64_t>(tick);
      const auto seq = static_cast<std::uint64_t>(worker.sequence);
      id = (t << layout_.time_shift()) | (seq << layout_.sequence_shift()) |
           (w << layout_.worker_shift());
    }
    record(worker, id);
    if (r) ctx_.complete(*r, Outcome::ok);
    return true;
  }

  void record(Worker& worker, std::uint64_t id) {
    const std::int64_t ms = ctx_.now() / milliseconds(1);
    if (ms != worker.ms_now) worker.ms_now = ms, worker.in_this_ms = 0;
    max_per_ms_ = std::max(max_per_ms_, ++worker.in_this_ms);
    ++worker.issued;
    issued_.push_back({id, ctx_.now()});
  }

  void sleep(std::size_t w, Time wait) {
    ++waits_;
    waits_metric_.add(1);
    workers_[w].waiting = true;
    ctx_.after(std::max<Time>(wait, 1), [this, w] {
      workers_[w].waiting = false;
      drain(w);
    });
  }

  /// Serve queued requests (and burst ids) in order until empty or the worker must wait.
  void drain(std::size_t w) {
    Worker& worker = workers_[w];
    while (worker.pending_synthetic > 0) {
      if (!serve(w, nullptr)) return;
      --worker.pending_synthetic;
    }
    while (!worker.queue.empty()) {
      if (!serve(w, &worker.queue.front())) return;
      worker.queue.pop_front();
    }
  }

  Scheme scheme_;
  Context& ctx_;
  std::vector<Worker> workers_;
  Layout layout_;
  Backwards backwards_;
  Time max_wait_, tolerance_;
  Metric& waits_metric_;
  std::vector<Issued> issued_;
  std::int64_t max_per_ms_ = 0, waits_ = 0, refused_ = 0;
};

LessonInfo info() {
  return {
      "snowflake_ids",
      "Distributed ids: snowflake instead of auto-increment on several masters",
      "Each master database hands out AUTO_INCREMENT ids from its own counter. With two "
      "masters accepting inserts, both issue 1, 2, 3, ...: nearly every id exists twice, and "
      "merging the data or using the id as a key corrupts it.",
      "Compose the id from the time, the worker id and a per-tick sequence (Twitter "
      "snowflake: 41-bit milliseconds, 10-bit worker, 12-bit sequence = 4096 ids per ms per "
      "worker; Sony's sonyflake: 39-bit 10 ms ticks, 8-bit sequence, 16-bit machine). No "
      "coordination, no duplicates, ids sort by time. A clock that moves backwards must make "
      "the generator wait or refuse, never reuse a tick; an exhausted sequence waits for the "
      "next tick.",
      {"Twitter snowflake", "Sony sonyflake", "Discord and Instagram ids (snowflake-like)",
       "MongoDB ObjectId (time + machine + counter)"},
      {{"auto_increment", true, "a counter per master: 1, 2, 3, ... on each"},
       {"snowflake", false, "41-bit ms | 10-bit worker | 12-bit sequence"},
       {"sonyflake", false, "39-bit 10 ms ticks | 8-bit sequence | 16-bit machine id"}},
      {{"workers", ParamType::integer, 2,
        "id generators (masters); request goes to client % workers", 1, 65536},
       {"on_backwards",
        ParamType::string,
        "wait",
        "when the clock moved backwards: wait (up to max_wait, then refuse), refuse, or ignore "
        "(reuse old ticks: the bug that makes duplicates)",
        -1e300,
        1e300,
        {"wait", "refuse", "ignore"}},
       {"max_wait", ParamType::duration, "50ms",
        "longest a worker waits for its clock to catch up before refusing", 0, 3600},
       {"order_tolerance", ParamType::duration, "1ms",
        "k-sorted check: an id is out of order when an id generated more than this later "
        "sorts before it",
        0, 3600}},
      {{"clock_backwards",
        "the worker's clock jumps back (NTP step, VM migration)",
        {{"worker", ParamType::integer, 0, "worker index", 0, 65535},
         {"by", ParamType::duration, "10ms", "how far back", 0, 3600}}},
       {"burst",
        "the worker must generate `count` ids at once (sequence exhaustion)",
        {{"worker", ParamType::integer, 0, "worker index", 0, 65535},
         {"count", ParamType::integer, 10000, "ids to generate", 1, 1e8}}}},
      {{"decode",
        "split an id into time ticks, worker and sequence",
        {{"id", ParamType::integer, Value(), "the id", 0, 9.3e18}}},
       {"workers", "per worker: ids issued, clock skew (ms), requests queued", {}},
       {"ids",
        "the last n ids issued, oldest first",
        {{"n", ParamType::integer, 10, "how many", 1, 100000}}}},
      {{"waits", MetricSpec::Kind::counter,
        "times a worker waited (clock backwards or sequence exhausted)"}},
      {{"ids", Unit::count, "ids issued"},
       {"duplicates", Unit::count, "ids issued more than once"},
       {"out_of_order", Unit::fraction,
        "ids that sort before an id generated more than order_tolerance earlier"},
       {"max_ids_per_ms", Unit::count, "most ids one worker issued in one millisecond"},
       {"waits", Unit::count, "times a worker waited (clock backwards or sequence exhausted)"},
       {"refused", Unit::count, "requests refused because the clock went backwards"}},
      /*uses_service_time=*/false};  // an id is generated at once (or after a wait for the clock)
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Scheme> schemes[] = {
      {"auto_increment", Scheme::auto_increment},
      {"snowflake", Scheme::snowflake},
      {"sonyflake", Scheme::sonyflake}};
  return std::make_unique<Generator>(variant_value(variant, schemes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
