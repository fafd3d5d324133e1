// Distributed locking: a lock service guards a read-modify-write on shared storage
// (Kleppmann, "How to do distributed locking", 2016).
//
//   job(request):  lock.acquire() (retry while busy, give up after lock_timeout)
//                  v = storage.read();  work(service time);  storage.write(v + 1)
//                  lock.release()
//
//   problem:  no_lease  lock held until released: a client that crashes holding it blocks
//                       everyone forever.
//             lease     the lock expires after `lease`: crashes are survived, but a client
//                       paused (GC, VM migration) longer than the lease wakes up still believing
//                       it holds the lock and writes: two writers, lost updates.
//             lease_check  right before the write: if now >= asked_at + lease: give up
//                       catches a pause during the work, not a write delayed in the network
//                       (nor a pause between the check and the send).
//   fix:      fencing   each grant carries a token that only grows; the storage remembers the
//                       highest token it has seen and refuses any access with an older one:
//                         if token < storage.max_token: reject (the client lost its lock)
//                       the stale writer is refused, no update is lost.
//
// Model: `clients` worker processes; request i goes to worker i % clients (round robin; a dead
// worker's share goes to the next live one) and locks resource key % resources. Every message
// (client <-> lock service, client <-> storage) takes a network delay; the lock service answers
// a busy lock with "busy" and the client asks again after `retry`, giving up `lock_timeout`
// after it first asked. A paused worker does nothing until it resumes: messages wait for it,
// its work stops. A crashed worker loses its jobs (errors) and the messages it had in flight;
// the lock it held stays held. A job has one pending event at a time (a message or a client
// timer), dispatched on the job's phase; a crash cancels it.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Scheme { no_lease, lease, lease_check, fencing };

constexpr Time kForever = std::numeric_limits<Time>::max();

/// Where a job is: what its next client-side event means (first group), or which message of it
/// is on its way to the lock service or the storage (second group).
enum class Phase : std::uint8_t {
  start,      // arrived at its worker: ask for the lock
  busy,       // the lock service said "held by someone else"
  retry,      // retry timer expired: ask again
  granted,    // got the lock (and a token): read
  read_done,  // got the value: work
  working,    // work timer
  write_ok,   // write acknowledged: done, release the lock
  rejected,   // storage refused a read or write carrying an old token

  acquiring,  // acquire -> lock service
  reading,    // read -> storage
  writing,    // write -> storage
  releasing,  // release -> lock service (the job has already been answered)
};

struct Job {
  Request request;
  std::uint32_t worker = 0, resource = 0;
  Time started = 0;  // when its worker got it: lock_timeout counts from here
  Phase phase = Phase::start;
  EventId event{};             // its one pending event
  std::uint32_t messages = 0;  // messages sent so far (each one's delay is a hash of its number)
  std::uint64_t token = 0;
  std::int64_t value = 0;  // value read from storage
  Time asked_at = 0;       // when it last sent an acquire: its lease ends before asked_at + lease
  Time frozen_mark = 0;    // the worker's frozen_total when the work (re)started
  Time sent = -1;          // its message in flight was sent then (-1: none; for sys:trace)
};

struct Worker {
  bool alive = true;
  Time frozen_until = 0;  // paused until then
  Time frozen_total = 0;  // total pause time started so far
  Time slow_until = 0;    // slow_network: messages sent before then take slow_extra longer
  Time slow_extra = 0;
};

/// One lock (at the lock service) and the storage object it guards.
struct Resource {
  // lock service
  bool held = false;
  std::uint64_t token = 0;  // last token granted (the current holder's when held)
  Time expires = kForever;
  Time granted_at = 0;
  std::uint32_t holder = 0;  // worker of the last grant
  SlotHandle holder_job;     // its job (for the `locks` operation)
  // storage
  std::int64_t counter = 0;
  std::uint64_t max_token = 0;  // highest token seen by the storage (reads and writes)
  std::int64_t writes = 0;      // writes applied
};

class Locking final : public System {
 public:
  Locking(Scheme scheme, const Params& p, Context& ctx)
      : scheme_(scheme),
        ctx_(ctx),
        workers_(p.integer<std::size_t>("clients")),
        resources_(p.integer<std::size_t>("resources")),
        lease_(p.duration("lease")),
        lock_timeout_(p.duration("lock_timeout")),
        retry_(p.duration("retry")),
        net_min_(p.duration("net_min")),
        net_max_(p.duration("net_max")),
        pause_rate_(p.real("pause_rate")),
        pause_mean_(p.duration("pause_mean")),
        // The lesson's stream is the same in every variant: so are the network and the pauses.
        net_salt_(ctx.rng().next()),
        unsafe_metric_(ctx.metric("unsafe_writes")),
        rejected_metric_(ctx.metric("rejected_stale")),
        expired_metric_(ctx.metric("leases_expired")),
        lost_metric_(ctx.metric("lost_updates")),
        aborted_metric_(ctx.metric("aborted_writes")) {
    if (net_max_ < net_min_) throw std::invalid_argument("net_max must be at least net_min");
    if (pause_rate_ > 0)
      for (std::uint32_t w = 0; w < workers_.size(); ++w) schedule_random_pause(w);
  }

  void handle(const Request& r) override {
    const std::uint32_t n = static_cast<std::uint32_t>(workers_.size());
    std::uint32_t w = static_cast<std::uint32_t>(r.id % n);
    for (std::uint32_t k = 0; k < n && !workers_[w].alive; ++k) w = (w + 1) % n;
    if (!workers_[w].alive) return ctx_.complete(r, Outcome::error);
    const SlotHandle h = jobs_.acquire();
    jobs_[h] = Job{r, w, static_cast<std::uint32_t>(r.key % resources_.size()), ctx_.now()};
    client(h);
  }

  void inject(const std::string& fault, const Value& p) override {
    const std::uint32_t w = worker_index(p["client"].as_int());
    Worker& worker = workers_[w];
    if (fault == "pause") {
      if (worker.alive) pause(w, p["duration"].as_int());
    } else if (fault == "crash") {
      if (worker.alive) crash(w);
    } else if (fault == "restart") {
      worker.alive = true;
    } else if (fault == "slow_network") {
      worker.slow_until = ctx_.now() + p["duration"].as_int();
      worker.slow_extra = p["extra"].as_int();
    }
  }

  Value call(const std::string&, const Value&) override {
    List out;  // "locks", the one operation
    for (const Resource& r : resources_)
      out.push_back(Map{{"held", r.held && ctx_.now() < r.expires},
                        {"token", static_cast<std::int64_t>(r.token)},
                        {"holder", static_cast<std::int64_t>(r.holder)},
                        {"holder_phase", holder_phase(r)},
                        {"granted_at_s", to_seconds(r.granted_at)},
                        {"counter", r.counter},
                        {"writes", r.writes},
                        {"max_token", static_cast<std::int64_t>(r.max_token)}});
    return out;
  }

  Map figures() const override {
    return {{"counter", counter_sum_},           {"lost_updates", writes_ - counter_sum_},
            {"max_erased", max_erased_},         {"unsafe_writes", unsafe_writes_},
            {"rejected_stale", rejected_stale_}, {"leases_expired", leases_expired_}};
  }

  /// The figures count what the lock service and the storage do from now on: `counter` is then
  /// the counters' increase since.
  void reset_stats() override {
    writes_ = counter_sum_ = unsafe_writes_ = rejected_stale_ = leases_expired_ = max_erased_ = 0;
  }

 private:
  std::uint32_t worker_index(std::int64_t client) const {
    if (client < 0) return resources_[0].holder;  // the client of the last grant on resource 0
    if (client >= static_cast<std::int64_t>(workers_.size()))
      throw std::invalid_argument("client " + std::to_string(client) + " does not exist (0.." +
                                  std::to_string(workers_.size() - 1) + ")");
    return static_cast<std::uint32_t>(client);
  }

  /// What the job of the last grant is doing, as the `locks` operation shows it.
  const char* holder_phase(const Resource& r) const {
    if (r.token == 0) return "none";  // never granted
    const Job* job = jobs_.get(r.holder_job);
    if (job == nullptr) return "gone";  // done, or died with its client
    switch (job->phase) {
      case Phase::granted:
      case Phase::reading:
        return "reading";
      case Phase::read_done:
      case Phase::working:
        return "working";
      case Phase::writing:
      case Phase::write_ok:
        return "writing";
      case Phase::releasing:
        return "releasing";
      case Phase::rejected:
        return "rejected";
      default:  // a job asking for the lock does not hold it
        return "acquiring";
    }
  }

  /// The delay of the job's next message: uniform in [net_min, net_max], a hash of (job,
  /// message number), so that every variant's network delays the same messages alike.
  Time delay(Job& job) {
    const double u = Rng::uniform_at(net_salt_, job.request.id, job.messages++);
    return net_min_ + round_time(u * static_cast<double>(net_max_ - net_min_));
  }

  void finish(SlotHandle h, Outcome outcome) {
    ctx_.complete(jobs_[h].request, outcome);
    jobs_.release(h);
  }

  void pause(std::uint32_t w, Time duration) {
    if (ctx_.tracing())
      ctx_.trace_event(static_cast<int>(w),
                       "pause " + std::to_string(to_seconds(duration)).substr(0, 4) + "s");
    Worker& worker = workers_[w];
    const Time from = std::max(worker.frozen_until, ctx_.now());
    const Time until = std::max(from, ctx_.now() + duration);
    worker.frozen_total += until - from;
    worker.frozen_until = until;
  }

  void schedule_random_pause(std::uint32_t w) {
    const Time gap = round_time(ctx_.rng().exponential(1e9 / pause_rate_));
    ctx_.after(gap, [this, w] {
      if (workers_[w].alive)
        pause(w, round_time(ctx_.rng().exponential(static_cast<double>(pause_mean_))));
      schedule_random_pause(w);
    });
  }

  /// The worker dies: its jobs fail and their messages in flight are lost; a job already
  /// answered only had its release left, which is lost too.
  void crash(std::uint32_t w) {
    if (ctx_.tracing()) ctx_.trace_event(static_cast<int>(w), "crash");
    workers_[w].alive = false;
    workers_[w].frozen_until = 0;
    jobs_.for_each([&](SlotHandle h, Job& job) {
      if (job.worker != w) return;
      ctx_.cancel(job.event);
      if (job.phase != Phase::releasing) ctx_.complete(job.request, Outcome::error);
      jobs_.release(h);
    });
    std::string held;
    for (std::uint32_t i = 0; i < resources_.size(); ++i)
      if (resources_[i].held && resources_[i].holder == w) held += " " + std::to_string(i);
    ctx_.log("client " + std::to_string(w) + " crashed" +
             (held.empty() ? "" : " holding the lock on resource" + held));
  }

  // --- messages -------------------------------------------------------------------------------

  void to_client(SlotHandle h, Phase phase, Time after) {
    jobs_[h].phase = phase;
    jobs_[h].event = ctx_.after(after, [this, h] { client(h); });
  }

  /// A reply of the lock service or the storage to the job's client.
  void reply(SlotHandle h, Phase phase) {
    jobs_[h].sent = ctx_.now();
    to_client(h, phase, delay(jobs_[h]));
  }

  /// The job's message on the space-time diagram: nodes 0.. are the clients, then the lock
  /// service, then the storage.
  void trace(const Job& job, bool to_server) {
    static const char* names[] = {"start",   "busy",    "retry",    "granted",
                                  "read ok", "working", "write ok", "rejected (old token)",
                                  "acquire", "read",    "write",    "release"};
    const auto lock = static_cast<int>(workers_.size());
    const bool storage = job.phase == Phase::reading || job.phase == Phase::writing ||
                         job.phase == Phase::read_done || job.phase == Phase::write_ok ||
                         job.phase == Phase::rejected;
    const int server = storage ? lock + 1 : lock, client = static_cast<int>(job.worker);
    ctx_.trace_message(
        to_server ? client : server, to_server ? server : client, job.sent,
        std::string(names[static_cast<int>(job.phase)]) + " token " + std::to_string(job.token));
  }

  void to_server(SlotHandle h, Phase phase) {
    Job& job = jobs_[h];
    job.phase = phase;
    job.sent = ctx_.now();
    const Worker& worker = workers_[job.worker];
    const Time extra = worker.slow_until > ctx_.now() ? worker.slow_extra : 0;
    job.event = ctx_.after(delay(job) + extra, [this, h] { server(h); });
  }

  /// A message arriving at the lock service or the storage.
  void server(SlotHandle h) {
    if (ctx_.tracing()) trace(jobs_[h], true);
    switch (jobs_[h].phase) {
      case Phase::acquiring:
        return acquire(h);
      case Phase::reading:
        return read(h);
      case Phase::writing:
        return write(h);
      case Phase::releasing:
        return release(h);
      default:
        return;
    }
  }

  /// Everything a client process does, one step per event. A paused client does nothing until
  /// it resumes; its work takes as much longer as the pauses that hit it.
  void client(SlotHandle h) {
    Job& job = jobs_[h];
    const Worker& worker = workers_[job.worker];
    const Time now = ctx_.now();
    if (job.sent >= 0) {  // a reply arrived (a paused client handles it later)
      if (ctx_.tracing()) trace(job, false);
      job.sent = -1;
    }
    if (job.phase == Phase::working) {
      const Time frozen = worker.frozen_total - job.frozen_mark;
      if (frozen > 0) {  // paused during the work: the rest of it runs after the pause
        job.frozen_mark = worker.frozen_total;
        return to_client(h, Phase::working, frozen);
      }
    } else if (worker.frozen_until > now) {
      return to_client(h, job.phase, worker.frozen_until - now);
    }
    switch (job.phase) {
      case Phase::busy:
        if (now + retry_ - job.started > lock_timeout_) return finish(h, Outcome::timeout);
        return to_client(h, Phase::retry, retry_);
      case Phase::start:
      case Phase::retry:
        job.asked_at = now;
        return to_server(h, Phase::acquiring);
      case Phase::granted:
        return to_server(h, Phase::reading);
      case Phase::read_done:
        job.frozen_mark = worker.frozen_total;
        return to_client(h, Phase::working, job.request.service);
      case Phase::working:
        // lease_check: "is my lease still valid?" right before the write. It catches a pause
        // during the work, not a write that arrives late (nor, in a real process, a pause
        // between this check and the send).
        if (scheme_ == Scheme::lease_check && now >= job.asked_at + lease_) {
          aborted_metric_.add(1);
          ctx_.complete(job.request, Outcome::error);
          return to_server(h, Phase::releasing);
        }
        return to_server(h, Phase::writing);
      case Phase::write_ok:
        ctx_.complete(job.request, Outcome::ok);
        return to_server(h, Phase::releasing);
      case Phase::rejected:
        return finish(h, Outcome::error);
      default:  // a server-side phase: not the client's turn
        return;
    }
  }

  // --- lock service ---------------------------------------------------------------------------

  void acquire(SlotHandle h) {
    Job& job = jobs_[h];
    Resource& r = resources_[job.resource];
    const Time now = ctx_.now();
    if (r.held && now < r.expires) return reply(h, Phase::busy);
    if (r.held) {  // the lease ran out without a release: the lock is free again
      ++leases_expired_;
      expired_metric_.add(1);
    }
    r.held = true;
    r.token += 1;
    r.granted_at = now;
    r.expires = scheme_ == Scheme::no_lease ? kForever : now + lease_;
    r.holder = job.worker;
    r.holder_job = h;
    job.token = r.token;
    reply(h, Phase::granted);
  }

  void release(SlotHandle h) {
    Resource& r = resources_[jobs_[h].resource];
    if (r.held && r.token == jobs_[h].token) r.held = false;  // not a lock it already lost
    jobs_.release(h);
  }

  // --- storage --------------------------------------------------------------------------------

  /// Fencing: refuse an access carrying a token older than one already seen.
  bool fenced(const Job& job) {
    if (scheme_ != Scheme::fencing || job.token >= resources_[job.resource].max_token) return false;
    ++rejected_stale_;
    rejected_metric_.add(1);
    return true;
  }

  void read(SlotHandle h) {
    Job& job = jobs_[h];
    Resource& r = resources_[job.resource];
    if (fenced(job)) return reply(h, Phase::rejected);
    r.max_token = std::max(r.max_token, job.token);
    job.value = r.counter;
    reply(h, Phase::read_done);
  }

  void write(SlotHandle h) {
    Job& job = jobs_[h];
    Resource& r = resources_[job.resource];
    if (fenced(job)) return reply(h, Phase::rejected);
    if (job.token < r.max_token) {  // the storage already served a newer lock holder
      ++unsafe_writes_;
      unsafe_metric_.add(1);
    }
    r.max_token = std::max(r.max_token, job.token);
    max_erased_ = std::max(max_erased_, r.counter - job.value);  // increments since its read
    counter_sum_ += job.value + 1 - r.counter;
    r.counter = job.value + 1;
    ++r.writes;
    ++writes_;
    lost_metric_.set(static_cast<double>(writes_ - counter_sum_));
    reply(h, Phase::write_ok);
  }

  Scheme scheme_;
  Context& ctx_;
  std::vector<Worker> workers_;
  std::vector<Resource> resources_;
  Time lease_, lock_timeout_, retry_, net_min_, net_max_;
  double pause_rate_;
  Time pause_mean_;
  std::uint64_t net_salt_;
  Metric& unsafe_metric_;
  Metric& rejected_metric_;
  Metric& expired_metric_;
  Metric& lost_metric_;
  Metric& aborted_metric_;
  SlotPool<Job> jobs_;
  std::int64_t writes_ = 0, counter_sum_ = 0;  // over all resources
  std::int64_t unsafe_writes_ = 0, rejected_stale_ = 0, leases_expired_ = 0, max_erased_ = 0;
};

LessonInfo info() {
  return {
      "distributed_locking",
      "Distributed locking: leases and fencing tokens",
      "Clients take a lock from a lock service before a read-modify-write on shared storage. "
      "A lock held until released is held forever by a client that crashes: everyone else "
      "blocks. A lease (the lock expires) survives the crash, but a client paused longer than "
      "the lease (a stop-the-world GC, a VM migration) wakes up still believing it holds the "
      "lock and writes over the work of the client that got the lock after it: two writers, "
      "lost updates.",
      "Fencing tokens: the lock service hands out a number that grows with every grant; the "
      "client sends it with every storage access; the storage remembers the highest token it "
      "has seen and refuses older ones. The client that lost its lock is refused instead of "
      "corrupting the data. The lease alone cannot do it: no client-side check closes the gap "
      "between the check and the write.",
      {"Google Chubby (lock sequencers checked by the servers)",
       "Apache ZooKeeper (zxid / znode czxid as fencing tokens)",
       "etcd (leases; the key's revision as a token, compare-and-swap on it)",
       "Kleppmann 2016 vs Redis Redlock (no fencing token)"},
      {{"no_lease", true, "the lock is held until released (forever if the holder crashed)"},
       {"lease", true, "the lock expires after `lease`; the storage trusts every client"},
       {"lease_check", true,
        "lease + the client checks its lease right before writing (aborts if expired)"},
       {"fencing", false, "lease + fencing token checked by the storage on reads and writes"}},
      {{"clients", ParamType::integer, 8,
        "client processes; request i goes to client i % clients (the next live one if dead)", 1,
        100000},
       {"resources", ParamType::integer, 10,
        "locked storage objects (counters); a request locks resource key % resources", 1, 1e6},
       {"lease", ParamType::duration, "1s", "lease length (lease and fencing)", 1e-6, 86400},
       {"lock_timeout", ParamType::duration, "3s",
        "a job gives up (timeout) when the lock is still busy this long after its client first "
        "asked",
        0, 86400},
       {"retry", ParamType::duration, "5ms", "wait before asking a busy lock service again", 1e-6,
        3600},
       {"net_min", ParamType::duration, "0.2ms", "smallest one-way network delay", 0, 60},
       {"net_max", ParamType::duration, "1ms", "largest one-way network delay (uniform)", 0, 60},
       {"pause_rate", ParamType::real, 0.0,
        "random stop-the-world pauses per second per client (Poisson; 0 = none)", 0, 1e6},
       {"pause_mean", ParamType::duration, "500ms", "mean length of a random pause (exponential)",
        0, 3600}},
      {{"pause",
        "the client stops (GC, VM migration) and resumes later, unaware of the gap",
        {{"client", ParamType::integer, -1,
          "client index; -1 = the client of the last grant of resource 0", -1, 1e6},
         {"duration", ParamType::duration, "2s", "length of the pause", 0, 86400}}},
       {"crash",
        "the client dies: its jobs fail, its messages in flight are lost, its locks stay held",
        {{"client", ParamType::integer, -1,
          "client index; -1 = the client of the last grant of resource 0", -1, 1e6}}},
       {"restart",
        "a crashed client comes back (holding nothing, knowing nothing)",
        {{"client", ParamType::integer, -1,
          "client index; -1 = the client of the last grant of resource 0", -1, 1e6}}},
       {"slow_network",
        "messages the client sends in the next `duration` are delayed by `extra` (a packet "
        "stuck in a queue, a retransmission)",
        {{"client", ParamType::integer, -1,
          "client index; -1 = the client of the last grant of resource 0", -1, 1e6},
         {"extra", ParamType::duration, "2s", "added one-way delay", 0, 86400},
         {"duration", ParamType::duration, "100ms", "window of affected sends", 0, 86400}}}},
      {{"locks",
        "per resource: held, token, holder (client), holder_phase (none, reading, working, "
        "writing, releasing, rejected, gone), granted_at_s, counter, writes, max_token",
        {}}},
      {{"unsafe_writes", MetricSpec::Kind::counter,
        "writes applied after the storage had served a newer lock holder"},
       {"rejected_stale", MetricSpec::Kind::counter,
        "storage accesses refused for an old fencing token"},
       {"leases_expired", MetricSpec::Kind::counter,
        "locks taken over after their lease ran out without a release"},
       {"lost_updates", MetricSpec::Kind::gauge,
        "increments applied then overwritten (writes - counter)"},
       {"aborted_writes", MetricSpec::Kind::counter,
        "lease_check: writes given up because the lease had run out"}},
      {{"counter", Unit::count, "sum of the counters (their increase since a warm-up)"},
       {"lost_updates", Unit::count, "increments applied then overwritten (writes - counter)"},
       {"max_erased", Unit::count, "most increments a single write put back"},
       {"unsafe_writes", Unit::count,
        "writes applied after the storage had served a newer lock holder"},
       {"rejected_stale", Unit::count, "storage accesses refused for an old fencing token"},
       {"leases_expired", Unit::count,
        "locks taken over after their lease ran out without a release"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Scheme> schemes[] = {{"no_lease", Scheme::no_lease},
                                                           {"lease", Scheme::lease},
                                                           {"lease_check", Scheme::lease_check},
                                                           {"fencing", Scheme::fencing}};
  return std::make_unique<Locking>(variant_value(variant, schemes), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
