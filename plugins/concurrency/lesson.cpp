// Concurrency: unsynchronised shared state -> atomics, locks and lock ordering.
//
//   every request is one task run by a simulated thread on a CPU of `cores` cores; a thread is
//   a tiny program whose steps take step_time each (jittered per request and step, the same in
//   every variant); the effect of a step happens when it starts; threads beyond the cores wait
//   in a FIFO run queue; at a step boundary a thread is preempted with chance `preemption` when
//   another one is ready. A thread waiting for a lock or backing off leaves its core.
//
//   counter (increment counter[key % counters]):
//     unsynchronized:  load c; add; store c         two threads both load 5, both store 6:
//                                                   an increment is lost
//     mutex:           lock c; load; add; store; unlock   none lost; threads wait for the lock
//     atomic_cas:      load c; add; cas c           none lost; a CAS that finds the counter
//                                                   changed retries from the load
//   transfer (move 1 from account `from` to account `to`):
//     opposite_order:  lock from; lock to; debit; credit; unlock to; unlock from
//                      T1 holds a, waits for b; T2 holds b, waits for a: deadlock. A thread that
//                      has waited deadlock_timeout looks for a cycle in the wait-for graph and,
//                      on one, aborts itself (an error answer, counted): it never hangs
//     lock_order:      lock min(from, to); lock max(from, to); ...   no cycle can form
//     try_lock_backoff: lock from; try_lock to, or unlock from, sleep a random backoff, retry
//
// explore.hpp enumerates every interleaving of two threads' small programs (a model checker).
#include <algorithm>
#include <string>
#include <vector>

#include "explore.hpp"
#include "hldlab/fifo.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant {
  unsynchronized,
  mutex,
  atomic_cas,
  opposite_order,
  lock_order,
  try_lock_backoff
};

constexpr std::uint32_t kNoLock = ~0u;

struct Thread {
  Request request;
  std::uint8_t pc = 0;             // the next step of its program
  std::uint8_t held = 0;           // how many of `locks` it holds (taken in order)
  std::uint32_t steps = 0;         // steps executed: the index of its per-step draws
  std::uint32_t attempts = 0;      // try_lock_backoff: backoffs so far
  std::uint32_t locks[2] = {};     // the locks it takes, in its order
  std::uint32_t from = 0, to = 0;  // transfer: the accounts; counter: `from` is the counter
  std::int64_t loaded = 0, value = 0;
  std::uint32_t waiting_for = kNoLock;
  std::uint32_t wait_seq = 0;
  Time waiting_since = 0;
};

struct Lock {
  SlotHandle owner;
  Fifo<SlotHandle> waiters;
};

class Cpu final : public System {
 public:
  Cpu(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        cores_(p.integer<int>("cores")),
        step_(p.duration("step_time")),
        jitter_(p.real("jitter")),
        preemption_(p.real("preemption")),
        backoff_(p.duration("backoff")),
        deadlock_timeout_(p.duration("deadlock_timeout")),
        step_salt_(ctx.salt("step")),
        preempt_salt_(ctx.salt("preemption")),
        account_salt_(ctx.salt("accounts")),
        backoff_salt_(ctx.salt("backoff")),
        lost_metric_(ctx.metric("lost_updates")),
        retries_metric_(ctx.metric("cas_retries")),
        waits_metric_(ctx.metric("lock_waits")),
        deadlocks_metric_(ctx.metric("deadlocks")),
        backoffs_metric_(ctx.metric("backoffs")) {
    const bool counter = counter_variant();
    const auto n =
        static_cast<std::size_t>(counter ? p.integer("counters") : p.integer("accounts"));
    memory_.assign(n, counter ? 0 : kInitialBalance);
    locks_.resize(n);
  }

  void handle(const Request& r) override {
    const SlotHandle h = threads_.acquire();
    Thread& t = threads_[h];
    t = Thread{};
    t.request = r;
    const auto n = static_cast<std::uint32_t>(memory_.size());
    if (counter_variant()) {
      t.from = static_cast<std::uint32_t>(r.key % n);
      t.locks[0] = t.from;
    } else {  // two distinct accounts, the same in every transfer variant
      const std::uint64_t draw = Rng::hash(r.id ^ account_salt_);
      t.from = static_cast<std::uint32_t>(draw % n);
      t.to = (t.from + 1 + static_cast<std::uint32_t>(Rng::hash(draw) % (n - 1))) % n;
      const bool ordered = variant_ == Variant::lock_order;
      t.locks[0] = ordered ? std::min(t.from, t.to) : t.from;
      t.locks[1] = ordered ? std::max(t.from, t.to) : t.to;
    }
    make_ready(h);
  }

  Value call(const std::string& op, const Value& args) override {
    if (op != "explore") return System::call(op, args);
    const int k = static_cast<int>(args.as_map().at("increments").as_int());
    using concurrency::IncrementKind;
    std::vector<concurrency::Program> programs;
    switch (variant_) {
      case Variant::unsynchronized:
      case Variant::mutex:
      case Variant::atomic_cas: {
        const auto kind = variant_ == Variant::unsynchronized ? IncrementKind::unsynchronized
                          : variant_ == Variant::mutex        ? IncrementKind::mutex
                                                              : IncrementKind::atomic_cas;
        programs = {concurrency::increment_program(kind, k),
                    concurrency::increment_program(kind, k)};
        break;
      }
      case Variant::opposite_order:
        programs = {concurrency::two_lock_program(0, 1, k), concurrency::two_lock_program(1, 0, k)};
        break;
      case Variant::lock_order:
        programs = {concurrency::two_lock_program(0, 1, k), concurrency::two_lock_program(0, 1, k)};
        break;
      case Variant::try_lock_backoff:
        throw std::invalid_argument(
            "explore does not apply to try_lock_backoff: two threads can back off and retry for "
            "ever, so its interleavings are unbounded (explore applies to every other variant)");
    }
    const concurrency::Exploration e = concurrency::explore(programs);
    return Map{{"executions", e.executions},
               {"lost_update", e.lost_update},
               {"deadlocked", e.deadlocked},
               {"cas_retries", e.cas_retries},
               {"min_final", e.finals.empty() ? 0 : e.finals.begin()->first},
               {"max_final", e.finals.empty() ? 0 : e.finals.rbegin()->first}};
  }

  Map figures() const override {
    const bool counter = counter_variant();
    std::int64_t balance = 0;
    if (!counter)
      for (std::int64_t b : memory_) balance += b;
    const double finished = static_cast<double>(std::max<std::int64_t>(1, done_ + deadlocks_));
    return {{"tasks", done_},
            {"lost_updates", lost()},
            {"lost_share",
             written_ ? static_cast<double>(lost()) / static_cast<double>(written_) : 0.0},
            {"cas_retries", cas_retries_},
            {"lock_waits", lock_waits_},
            {"lock_wait", to_seconds(lock_wait_) / finished},
            {"deadlocks", deadlocks_},
            {"backoffs", backoffs_},
            {"balance_drift",
             counter ? 0 : balance - kInitialBalance * static_cast<std::int64_t>(memory_.size())},
            {"steps", steps_}};
  }

  void reset_stats() override {
    done_ = written_ = cas_retries_ = lock_waits_ = deadlocks_ = backoffs_ = steps_ = 0;
    lock_wait_ = 0;
    counted_from_ = counter_sum_;
  }

 private:
  static constexpr std::int64_t kInitialBalance = 1000;

  /// unsynchronized, mutex and atomic_cas increment counters; the others transfer.
  bool counter_variant() const { return variant_ <= Variant::atomic_cas; }

  /// Increments written minus what the counters gained since counting started.
  std::int64_t lost() const { return written_ - (counter_sum_ - counted_from_); }

  // ---- the scheduler ---------------------------------------------------------------------------

  /// `h` can run: on a free core now, or at the back of the run queue.
  void make_ready(SlotHandle h) {
    if (busy_ < cores_) {
      ++busy_;
      ctx_.after(0, [this, h] { execute(h); });
    } else {
      ready_.push_back(h);
    }
  }

  /// The running thread leaves its core: the first ready thread gets it.
  void leave_core() {
    if (ready_.empty()) {
      --busy_;
      return;
    }
    const SlotHandle next = ready_.pop_front();
    ctx_.after(0, [this, next] { execute(next); });
  }

  /// The step of `h` ended: finish, yield the core (preemption) or run the next step.
  void step_ended(SlotHandle h) {
    Thread& t = threads_[h];
    if (finished(t)) {
      ++done_;
      ctx_.complete(t.request, Outcome::ok);
      threads_.release(h);
      return leave_core();
    }
    if (!ready_.empty() && Rng::uniform_at(preempt_salt_, t.request.id, t.steps) < preemption_) {
      ready_.push_back(h);
      return leave_core();
    }
    execute(h);
  }

  /// The step takes step_time, jittered by the same draw in every variant.
  void occupy_core(SlotHandle h) {
    Thread& t = threads_[h];
    const double u = Rng::uniform_at(step_salt_, t.request.id, t.steps);
    ++t.steps;
    ++steps_;
    ctx_.after(scale_time(step_, 1.0 + jitter_ * (u - 0.5)), [this, h] { step_ended(h); });
  }

  // ---- the programs ------------------------------------------------------------------------

  bool finished(const Thread& t) const {
    switch (variant_) {
      case Variant::unsynchronized:
      case Variant::atomic_cas:
        return t.pc == 3;
      case Variant::mutex:
        return t.pc == 5;
      default:
        return t.pc == 6;
    }
  }

  /// Run the next step of `h` (its effect happens now), then hold the core for its time, unless
  /// the thread waits for a lock or backs off.
  void execute(SlotHandle h) {
    Thread& t = threads_[h];
    std::int64_t& counter = memory_[t.from];
    switch (variant_) {
      case Variant::unsynchronized:
      case Variant::atomic_cas:
        if (t.pc == 0) {
          t.loaded = t.value = counter;
        } else if (t.pc == 1) {
          ++t.value;
        } else if (variant_ == Variant::unsynchronized || counter == t.loaded) {
          write_counter(counter, t.value);
        } else {  // the CAS failed: another thread wrote since the load
          ++cas_retries_;
          retries_metric_.add(1);
          t.pc = 0;
          return occupy_core(h);
        }
        break;
      case Variant::mutex:
        if (t.pc == 0 && !lock(h, 0)) return;
        if (t.pc == 1) t.loaded = t.value = counter;
        if (t.pc == 2) ++t.value;
        if (t.pc == 3) write_counter(counter, t.value);
        if (t.pc == 4) unlock(h);
        break;
      case Variant::opposite_order:
      case Variant::lock_order:
      case Variant::try_lock_backoff:
        if (t.pc == 0 && !lock(h, 0)) return;
        if (t.pc == 1) {
          if (variant_ != Variant::try_lock_backoff) {
            if (!lock(h, 1)) return;
          } else if (locks_[t.locks[1]].owner) {
            return back_off(h);
          } else {
            take(h, 1);
          }
        }
        if (t.pc == 2) memory_[t.from] -= 1;
        if (t.pc == 3) memory_[t.to] += 1;
        if (t.pc == 4 || t.pc == 5) unlock(h);
        break;
    }
    ++t.pc;
    occupy_core(h);
  }

  void write_counter(std::int64_t& counter, std::int64_t value) {
    counter_sum_ += value - counter;
    counter = value;
    ++written_;
    lost_metric_.set(static_cast<double>(lost()));
  }

  // ---- locks -------------------------------------------------------------------------------

  /// Thread `h` takes its lock number `which`: true if it got it; false if it now waits (off
  /// its core) until an unlock hands it over.
  bool lock(SlotHandle h, int which) {
    Thread& t = threads_[h];
    Lock& l = locks_[t.locks[which]];
    if (!l.owner) {
      take(h, which);
      return true;
    }
    ++lock_waits_;
    waits_metric_.add(1);
    t.waiting_for = t.locks[which];
    t.waiting_since = ctx_.now();
    const std::uint32_t seq = ++t.wait_seq;
    l.waiters.push_back(h);
    ctx_.after(deadlock_timeout_, [this, h, seq] { detect_deadlock(h, seq); });
    leave_core();
    return false;
  }

  void take(SlotHandle h, int which) {
    Thread& t = threads_[h];
    locks_[t.locks[which]].owner = h;
    t.held = static_cast<std::uint8_t>(which + 1);
  }

  /// Release the last lock `h` took; the first waiter gets it and becomes ready.
  void unlock(SlotHandle h) {
    Thread& t = threads_[h];
    --t.held;
    Lock& l = locks_[t.locks[t.held]];
    l.owner = SlotHandle{};
    if (l.waiters.empty()) return;
    const SlotHandle next = l.waiters.pop_front();
    Thread& w = threads_[next];
    lock_wait_ += ctx_.now() - w.waiting_since;
    w.waiting_for = kNoLock;
    take(next, w.held);
    ++w.pc;  // its lock step is done
    make_ready(next);
  }

  /// try_lock_backoff: the second lock is busy: release the first, sleep a random backoff that
  /// doubles with each attempt (capped at 64 x), start again.
  void back_off(SlotHandle h) {
    Thread& t = threads_[h];
    unlock(h);
    ++backoffs_;
    backoffs_metric_.add(1);
    const double u = Rng::uniform_at(backoff_salt_, t.request.id, t.attempts);
    const Time sleep =
        scale_time(backoff_, u * static_cast<double>(1u << std::min(t.attempts, 6u)));
    ++t.attempts;
    t.pc = 0;
    leave_core();
    ctx_.after(sleep, [this, h] { make_ready(h); });
  }

  /// `h` has waited deadlock_timeout for the wait numbered `seq`: follow the wait-for graph
  /// (a waiting thread -> the owner of the lock it waits for); back at `h`, it is a deadlock and
  /// `h` aborts: it leaves the queue, releases its locks and answers with an error.
  void detect_deadlock(SlotHandle h, std::uint32_t seq) {
    if (!threads_.live(h)) return;
    Thread& t = threads_[h];
    if (t.wait_seq != seq || t.waiting_for == kNoLock) return;
    SlotHandle at = locks_[t.waiting_for].owner;
    for (std::size_t hops = 0; hops <= threads_.in_use() && at; ++hops) {
      if (at == h) return abort_victim(h);
      const Thread& other = threads_[at];
      if (other.waiting_for == kNoLock) return;  // a chain that ends in a running thread
      at = locks_[other.waiting_for].owner;
    }
  }

  void abort_victim(SlotHandle h) {
    Thread& t = threads_[h];
    locks_[t.waiting_for].waiters.retain([h](SlotHandle w) { return !(w == h); });
    lock_wait_ += ctx_.now() - t.waiting_since;
    t.waiting_for = kNoLock;
    while (t.held > 0) unlock(h);  // it aborts before its debit: nothing to roll back
    ++deadlocks_;
    deadlocks_metric_.add(1);
    ctx_.complete(t.request, Outcome::error);
    threads_.release(h);
  }

  Variant variant_;
  Context& ctx_;
  int cores_;
  Time step_;
  double jitter_, preemption_;
  Time backoff_, deadlock_timeout_;
  std::uint64_t step_salt_, preempt_salt_, account_salt_, backoff_salt_;
  Metric& lost_metric_;
  Metric& retries_metric_;
  Metric& waits_metric_;
  Metric& deadlocks_metric_;
  Metric& backoffs_metric_;
  std::vector<std::int64_t> memory_;  // counters, or account balances
  std::vector<Lock> locks_;           // one per counter or account
  SlotPool<Thread> threads_;
  Fifo<SlotHandle> ready_;
  int busy_ = 0;
  std::int64_t counter_sum_ = 0, counted_from_ = 0;
  std::int64_t done_ = 0, written_ = 0, cas_retries_ = 0, lock_waits_ = 0, deadlocks_ = 0;
  std::int64_t backoffs_ = 0, steps_ = 0;
  Time lock_wait_ = 0;
};

LessonInfo info() {
  return {
      "concurrency",
      "Concurrency: unsynchronised shared state, atomics, locks and lock ordering",
      "Threads that read, modify and write shared memory without synchronisation lose updates: "
      "two increments both load 5 and both store 6. Threads that take two locks in opposite "
      "orders deadlock: each holds the lock the other waits for, and neither ever moves.",
      "A mutex makes the read-modify-write a critical section (no loss, threads wait for it); "
      "an atomic compare-and-swap writes only if the value is still the one loaded, and "
      "retries otherwise (no loss, retries instead of waits). A global lock order makes a cycle "
      "in the wait-for graph impossible; try-lock with a random backoff breaks it. A model "
      "checker (the explore operation) runs every interleaving of two small threads and counts "
      "exactly those that lose an update or deadlock.",
      {"std::mutex / pthread_mutex (futex: waiters sleep), std::atomic compare_exchange",
       "Java ConcurrentHashMap and LongAdder (CAS with retries), Linux lockdep (lock order)",
       "InnoDB and PostgreSQL deadlock detection on the wait-for graph (deadlock_timeout)",
       "Model checkers: loom (Rust), DSLabs, CHESS (Musuvathi et al. 2008), TLA+ TLC"},
      {{"unsynchronized", true, "counter: load; add; store, no synchronisation"},
       {"mutex", false, "counter: lock; load; add; store; unlock"},
       {"atomic_cas", false, "counter: load; add; compare-and-swap, retried on failure"},
       {"opposite_order", true,
        "transfer: lock from, then to: two opposite transfers deadlock (detected, one aborted)"},
       {"lock_order", false, "transfer: lock the lower account first: no deadlock"},
       {"try_lock_backoff", false,
        "transfer: lock from, try-lock to; if busy release, back off at random, retry"}},
      {{"cores", ParamType::integer, 4, "cores of the simulated CPU", 1, 4096},
       {"step_time", ParamType::duration, "1us", "mean time of one step of a thread", 1e-9, 1},
       {"jitter", ParamType::real, 0.5,
        "step times are uniform in step_time x [1 - jitter/2, 1 + jitter/2]", 0, 1},
       {"preemption", ParamType::real, 0.1,
        "chance that a thread yields its core at a step boundary when another is ready", 0, 1},
       {"counters", ParamType::integer, 1, "counter variants: counters (request key mod counters)",
        1, 1e6},
       {"accounts", ParamType::integer, 8, "transfer variants: accounts, one lock each", 2, 1e6},
       {"backoff", ParamType::duration, "2us",
        "try_lock_backoff: base backoff (uniform in [0, base x 2^attempt], attempt capped at 6)",
        1e-9, 1},
       {"deadlock_timeout", ParamType::duration, "20us",
        "how long a thread waits for a lock before it checks the wait-for graph for a cycle", 1e-9,
        10}},
      {},
      {{"explore",
        "run every interleaving of two threads running this variant's program `increments` "
        "times; returns executions, lost_update, deadlocked, cas_retries, min_final, max_final",
        {{"increments", ParamType::integer, 1, "increments (or transfers) per thread", 1, 3}}}},
      {{"lost_updates", MetricSpec::Kind::gauge,
        "increments written minus what the counters gained (goes down when a stale store "
        "happens to restore)"},
       {"cas_retries", MetricSpec::Kind::counter, "compare-and-swaps that failed and retried"},
       {"lock_waits", MetricSpec::Kind::counter, "lock acquisitions that had to wait"},
       {"deadlocks", MetricSpec::Kind::counter,
        "wait-for cycles detected (each aborts one thread with an error)"},
       {"backoffs", MetricSpec::Kind::counter, "try-locks that failed and backed off"}},
      {{"tasks", Unit::count, "tasks that completed (increments or transfers)"},
       {"lost_updates", Unit::count, "increments written minus what the counters gained"},
       {"lost_share", Unit::fraction, "lost_updates / increments written"},
       {"cas_retries", Unit::count, "failed compare-and-swaps (each one retried)"},
       {"lock_waits", Unit::count, "lock acquisitions that had to wait"},
       {"lock_wait", Unit::seconds, "mean time a task waited for locks"},
       {"deadlocks", Unit::count, "deadlocks detected; each aborted one task (an error)"},
       {"backoffs", Unit::count, "try-locks that failed and backed off"},
       {"balance_drift", Unit::count, "transfer: total balance minus the opening total"},
       {"steps", Unit::count, "steps the threads executed (CPU work, retries included)"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"unsynchronized", Variant::unsynchronized}, {"mutex", Variant::mutex},
      {"atomic_cas", Variant::atomic_cas},         {"opposite_order", Variant::opposite_order},
      {"lock_order", Variant::lock_order},         {"try_lock_backoff", Variant::try_lock_backoff}};
  return std::make_unique<Cpu>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
