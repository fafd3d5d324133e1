#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// A clockwork setup: one lock, a job every 50 ms for 2 s (39 jobs: job i arrives at 50 (i + 1)
/// ms, on client i % 8), 10 ms of work, 1 ms per message, 100 ms leases. Uncontended, a job at
/// t runs:
///   t+1 granted at the lock service, t+3 read at the storage, t+4..t+14 work,
///   t+15 write at the storage, t+16 acknowledged (ok), t+17 released.
/// Job 9 (client 1, t = 500 ms) holds the lock (token 10) from 501 ms; at 508 ms, in its work,
/// `fault` hits the client of the last grant (client 1).
struct Clockwork {
  ExperimentConfig config;
  Experiment e;
  std::vector<SystemSlot*> slots;

  explicit Clockwork(const std::string& fault, const Map& fault_args = {},
                     Time at = milliseconds(508))
      : config(make_config()), e(config) {
    e.set_workload(hldlab::testing::constant_workload(20, milliseconds(10)));
    const Map params{{"clients", 8},    {"resources", 1},       {"lease", "100ms"},
                     {"retry", "5ms"},  {"lock_timeout", "1s"}, {"net_min", "1ms"},
                     {"net_max", "1ms"}};
    for (const char* v : {"no_lease", "lease", "lease_check", "fencing"}) {
      SystemSlot& s = e.add(registry(), "distributed_locking", v, params);
      slots.push_back(&s);
      e.at(at, [&s, fault, fault_args] { s.inject(fault, fault_args); });
    }
  }
  static ExperimentConfig make_config() {
    ExperimentConfig c;
    c.duration = seconds(2);
    return c;
  }
};

}  // namespace

TEST_CASE(
    "a pause longer than the lease makes exactly one unsafe write that loses every update "
    "made meanwhile, and fencing refuses that write") {
  // Client 1 pauses 270 ms at 508 ms, in job 9's work. Its lease (granted at 501 ms) runs out
  // at 601 ms; jobs 10..14 (550..750 ms) take the lock in turn and each add 1. Client 1 resumes
  // at 778 ms, finishes its last 6 ms of work and writes at 785 ms, between job 14's write
  // (765 ms) and job 15's read (803 ms): it writes the value it read at 503 ms plus one.
  Clockwork c("pause", {{"duration", "270ms"}});
  const auto r = c.e.run();
  const auto& lease = row(r, "lease");
  REQUIRE(lease.count(Outcome::ok) == 39);  // nobody noticed anything
  REQUIRE(figure(lease, "leases_expired") == 1);
  REQUIRE(figure(lease, "unsafe_writes") == 1);
  REQUIRE(figure(lease, "lost_updates") == 5);  // jobs 10..14
  REQUIRE(figure(lease, "counter") == 34);
  REQUIRE(figure(lease, "max_erased") == 5);  // it read 9 and wrote 10 over 14

  const auto& fencing = row(r, "fencing");
  REQUIRE(figure(fencing, "leases_expired") == 1);
  REQUIRE(figure(fencing, "rejected_stale") == 1);  // the paused client's write (token 10 < 15)
  REQUIRE(figure(fencing, "unsafe_writes") == 0);
  REQUIRE(figure(fencing, "lost_updates") == 0);
  REQUIRE(figure(fencing, "max_erased") == 0);
  REQUIRE(fencing.count(Outcome::error) == 1);
  REQUIRE(fencing.count(Outcome::ok) == 38);
  REQUIRE(figure(fencing, "counter") == 38);

  // Checking the lease before writing catches this pause: at 784 ms the lease it asked for at
  // 500 ms is long gone, so it gives up (error) instead of writing.
  const auto& check = row(r, "lease_check");
  REQUIRE(check.count(Outcome::error) == 1);
  REQUIRE(check.count(Outcome::ok) == 38);
  REQUIRE(figure(check, "unsafe_writes") == 0);
  REQUIRE(figure(check, "lost_updates") == 0);
  REQUIRE(check.metrics.at("aborted_writes").as_double() == 1);

  // Without a lease the pause only delays the others: the lock waits for the paused client.
  const auto& no_lease = row(r, "no_lease");
  REQUIRE(no_lease.count(Outcome::ok) == 39);
  REQUIRE(figure(no_lease, "counter") == 39);
  REQUIRE(figure(no_lease, "leases_expired") == 0);
  REQUIRE(figure(no_lease, "unsafe_writes") == 0);
  REQUIRE(no_lease.max > 0.2);  // job 10 waited for the pause
}

TEST_CASE(
    "a pause before the read makes fencing refuse the read, and the lease's late writer "
    "then reads fresh data") {
  // Client 1 pauses 270 ms at 501.5 ms, before the grant reaches it (502 ms). It reads at
  // 772.5 ms, after jobs 10..14 (the last wrote at 765 ms).
  Clockwork c("pause", {{"duration", "270ms"}}, microseconds(501500));
  const auto r = c.e.run();
  const auto& fencing = row(r, "fencing");
  REQUIRE(figure(fencing, "rejected_stale") == 1);  // the read (token 10 < 15)
  REQUIRE(fencing.count(Outcome::error) == 1);
  REQUIRE(figure(fencing, "counter") == 38);
  // Lease: it reads 14, works, writes 15 at 785.5 ms, before job 15 reads (803 ms). Two writers
  // (it writes with a lost lock), but this time no update is lost: unsafe is not always lossy.
  const auto& lease = row(r, "lease");
  REQUIRE(figure(lease, "unsafe_writes") == 1);
  REQUIRE(figure(lease, "lost_updates") == 0);
  REQUIRE(figure(lease, "counter") == 39);
  // lease_check: at 783.5 ms its lease (asked at 500 ms) is over: it gives up.
  REQUIRE(row(r, "lease_check").count(Outcome::error) == 1);
  REQUIRE(figure(row(r, "lease_check"), "counter") == 38);
}

TEST_CASE("a pause shorter than the lease is harmless with or without fencing") {
  Clockwork c("pause", {{"duration", "50ms"}});
  const auto r = c.e.run();
  for (const char* v : {"no_lease", "lease", "lease_check", "fencing"}) {
    INFO(v);
    const auto& s = row(r, v);
    REQUIRE(s.count(Outcome::ok) == 39);
    REQUIRE(figure(s, "counter") == 39);
    REQUIRE(figure(s, "leases_expired") == 0);
    REQUIRE(figure(s, "unsafe_writes") == 0);
  }
}

TEST_CASE(
    "without a lease a crashed holder blocks the lock forever, with one it is free again "
    "exactly one lease after the grant") {
  Clockwork c("crash");
  Value before[4], after[4], late[4];
  for (std::size_t i = 0; i < 4; ++i) {
    SystemSlot* s = c.slots[i];
    c.e.at(milliseconds(540), [s, &before, i] { before[i] = s->call("locks", {}); });
    c.e.at(milliseconds(610), [s, &after, i] { after[i] = s->call("locks", {}); });
    c.e.at(milliseconds(1990), [s, &late, i] { late[i] = s->call("locks", {}); });
  }
  const auto r = c.e.run();

  // no_lease: jobs 0..8 done, job 9 died with client 1, jobs 10..38 all wait 1 s and give up.
  const auto& no_lease = row(r, "no_lease");
  REQUIRE(no_lease.count(Outcome::ok) == 9);
  REQUIRE(no_lease.count(Outcome::error) == 1);
  REQUIRE(no_lease.count(Outcome::timeout) == 29);
  REQUIRE(late[0].as_list()[0]["token"].as_int() == 10);  // still the dead client's grant
  REQUIRE(late[0].as_list()[0]["held"].as_bool());

  // lease and fencing: granted to job 9 at 501 ms, taken by job 11 (whose request reaches the
  // lock service at 601 ms) the moment the lease runs out; everyone else is served.
  for (std::size_t i : {1u, 2u, 3u}) {
    const auto& s = row(r, c.slots[i]->label());
    INFO(s.label);
    REQUIRE(before[i].as_list()[0]["token"].as_int() == 10);
    REQUIRE(before[i].as_list()[0]["granted_at_s"].as_double() == Approx(0.501));
    REQUIRE(after[i].as_list()[0]["token"].as_int() == 11);
    REQUIRE(after[i].as_list()[0]["granted_at_s"].as_double() == Approx(0.601));
    REQUIRE(figure(s, "leases_expired") == 1);
    REQUIRE(s.count(Outcome::ok) == 38);
    REQUIRE(s.count(Outcome::error) == 1);
    REQUIRE(s.count(Outcome::timeout) == 0);
    REQUIRE(figure(s, "counter") == 38);
  }
}

TEST_CASE(
    "checking the lease before writing does not stop a write that arrives late; fencing "
    "does") {
  // Job 9's write leaves client 1 at 514 ms, with 86 ms of its lease left, so the check passes,
  // but the network holds it 230 ms: it reaches the storage at 745 ms. Meanwhile the lease ran
  // out (601 ms) and jobs 10..13 incremented the counter; job 14 reads only at 753 ms.
  Clockwork c("slow_network", {{"extra", "230ms"}, {"duration", "50ms"}});
  const auto r = c.e.run();
  for (const char* v : {"lease", "lease_check"}) {
    INFO(v);
    const auto& s = row(r, v);
    REQUIRE(s.count(Outcome::ok) == 39);
    REQUIRE(figure(s, "unsafe_writes") == 1);
    REQUIRE(figure(s, "lost_updates") == 4);
    REQUIRE(figure(s, "max_erased") == 4);
    REQUIRE(figure(s, "counter") == 35);
  }
  REQUIRE(row(r, "lease_check").metrics.at("aborted_writes").as_double() == 0);
  const auto& fencing = row(r, "fencing");
  REQUIRE(figure(fencing, "rejected_stale") == 1);
  REQUIRE(figure(fencing, "lost_updates") == 0);
  REQUIRE(fencing.count(Outcome::ok) == 38);
  REQUIRE(figure(fencing, "counter") == 38);
  // Without a lease a slow message is only slow.
  REQUIRE(figure(row(r, "no_lease"), "counter") == 39);
}

TEST_CASE(
    "under random pauses fencing keeps the counter equal to the ok jobs on every seed, "
    "while the lease alone loses updates") {
  // A holder is paused longer than its lease about 0.16 times a second (lock held ~30% of the
  // time x 1 pause/s x P(pause > 200 ms) = e^(-2/3)): about 19 stale holders in 120 s, none
  // with probability e^-19 (6e-9), so every seed sees refusals.
  double lease_lost = 0, lease_unsafe = 0;
  for (std::uint64_t seed : {1, 2, 3, 4, 5}) {
    Workload w = hldlab::testing::poisson_workload(40);
    w.service = Distribution::lognormal(static_cast<double>(milliseconds(5)),
                                        static_cast<double>(milliseconds(50)));
    const Map params{
        {"resources", 1}, {"lease", "200ms"}, {"pause_rate", 1.0}, {"pause_mean", "300ms"}};
    const auto r = hldlab::testing::run_experiment(
        w, seconds(120),
        {{"distributed_locking", "lease", params}, {"distributed_locking", "fencing", params}},
        seed);
    const auto& fencing = row(r, "fencing");
    const auto& lease = row(r, "lease");
    INFO("seed " << seed << ": fencing rejected " << figure(fencing, "rejected_stale")
                 << ", lease lost " << figure(lease, "lost_updates"));
    REQUIRE(figure(fencing, "counter") == fencing.count(Outcome::ok));
    REQUIRE(figure(fencing, "lost_updates") == 0);
    REQUIRE(figure(fencing, "unsafe_writes") == 0);
    REQUIRE(figure(fencing, "rejected_stale") > 0);
    REQUIRE(fencing.count(Outcome::error) == figure(fencing, "rejected_stale"));
    REQUIRE(figure(lease, "counter") == lease.count(Outcome::ok) - figure(lease, "lost_updates"));
    REQUIRE(figure(lease, "rejected_stale") == 0);
    lease_lost += figure(lease, "lost_updates");
    lease_unsafe += figure(lease, "unsafe_writes");
  }
  CHECK(lease_unsafe >= 5);
  CHECK(lease_lost > lease_unsafe);
}

TEST_CASE(
    "a delay before the client gets its job adds exactly that delay to every job, and "
    "lock_timeout counts from when the client got the job") {
  SECTION("uncontended: every job takes 16 ms + 100 ms") {
    Clockwork c("restart", {{"client", 0}});  // restarting a live client does nothing
    for (SystemSlot* s : c.slots) c.e.at(0, [s] { s->inject("latency", {{"delay", "100ms"}}); });
    const auto r = c.e.run();
    for (const char* v : {"no_lease", "lease", "lease_check", "fencing"}) {
      INFO(v);
      CHECK(row(r, v).count(Outcome::ok) == 39);
      CHECK(row(r, v).max == Approx(0.116).epsilon(1e-9));
      CHECK(row(r, v).mean == Approx(0.116).epsilon(1e-9));
    }
  }
  SECTION("behind a dead holder: a job gives up 1 s after its client got it") {
    // Job 7 (arrives 400 ms, reaches client 7 at 500 ms) holds the lock when client 7 crashes
    // at 508 ms; the 31 jobs after it time out without a lease. A job asks at s (when its client
    // gets it), hears "busy" at s + 2 + 7k ms (1 ms each way, 5 ms between tries) and gives up
    // when the next try would pass s + 1 s: at s + 996 ms, 1.096 s after it arrived.
    Clockwork c("crash");
    for (SystemSlot* s : c.slots) c.e.at(0, [s] { s->inject("latency", {{"delay", "100ms"}}); });
    const auto r = c.e.run();
    const auto& no_lease = row(r, "no_lease");
    CHECK(no_lease.count(Outcome::timeout) == 31);
    CHECK(no_lease.max == Approx(1.096).epsilon(1e-9));
  }
}

TEST_CASE("after a warm-up the figures count what the lock service and the storage did since") {
  // The clockwork pause of the first test, with the warm-up ending at 1 s: the figures count
  // jobs 19..38 (20 jobs, 1 s .. 1.95 s), none of them disturbed.
  ExperimentConfig config = Clockwork::make_config();
  config.warmup = seconds(1);
  Experiment e(config);
  e.set_workload(hldlab::testing::constant_workload(20, milliseconds(10)));
  SystemSlot& s =
      e.add(registry(), "distributed_locking", "lease",
            {{"resources", 1}, {"lease", "100ms"}, {"net_min", "1ms"}, {"net_max", "1ms"}});
  e.at(milliseconds(508), [&s] { s.inject("pause", {{"duration", "270ms"}}); });
  const auto r = e.run();
  const auto& lease = row(r, "lease");
  CHECK(lease.requests == 20);
  CHECK(figure(lease, "counter") == 20);
  CHECK(figure(lease, "lost_updates") == 0);
  CHECK(figure(lease, "unsafe_writes") == 0);
  CHECK(figure(lease, "leases_expired") == 0);
}

TEST_CASE("the distributed_locking script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("distributed_locking.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 5);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("a client that does not exist and an inverted delay range are refused") {
  Experiment e;
  SystemSlot& s = e.add(registry(), "distributed_locking", "fencing", {{"clients", 4}});
  REQUIRE_THROWS_WITH(s.inject("crash", {{"client", 7}}),
                      Catch::Contains("client 7 does not exist"));
  REQUIRE_THROWS_WITH(e.add(registry(), "distributed_locking", "lease",
                            {{"net_min", "2ms"}, {"net_max", "1ms"}}, "bad"),
                      Catch::Contains("net_max must be at least net_min"));
}

TEST_CASE("restarting the crashed client does not give the lock back without a lease") {
  Clockwork c("crash");
  Value late[4];
  for (std::size_t i = 0; i < 4; ++i) {
    SystemSlot* s = c.slots[i];
    c.e.at(milliseconds(700), [s] { s->inject("restart", {{"client", 1}}); });
    c.e.at(milliseconds(1990), [s, &late, i] { late[i] = s->call("locks", {}); });
  }
  const auto r = c.e.run();
  // The new process knows nothing of the old one's lock, and the lock service cannot tell.
  const auto& no_lease = row(r, "no_lease");
  REQUIRE(no_lease.count(Outcome::timeout) == 29);
  REQUIRE(late[0].as_list()[0]["token"].as_int() == 10);
  REQUIRE(late[0].as_list()[0]["holder_phase"].as_string() == "gone");
  // With a lease the restarted client takes its share of jobs again (job 17 at 900 ms, ...).
  REQUIRE(row(r, "lease").count(Outcome::ok) == 38);
  REQUIRE(late[1].as_list()[0]["token"].as_int() == 39);  // one grant per job, none lost
}

TEST_CASE("with a lock per resource a dead holder blocks only its own resource") {
  Experiment e({.duration = seconds(20)});
  e.set_workload(hldlab::testing::poisson_workload(50, milliseconds(5)));
  SystemSlot& s = e.add(registry(), "distributed_locking", "no_lease", {{"resources", 2}});
  Value at_crash;
  bool crashed = false;
  // Crash the holder of resource 0 the first time it is seen working after 5 s.
  for (int ms = 5000; ms < 6000; ++ms)
    e.at(milliseconds(ms), [&] {
      if (crashed) return;
      const Value locks = s.call("locks", {});
      if (locks.as_list()[0]["holder_phase"].as_string() != "working") return;
      crashed = true;
      s.inject("crash", {});
      at_crash = s.call("locks", {});
    });
  const auto r = e.run();
  REQUIRE(crashed);
  const Value end = s.call("locks", {});
  const auto& row0 = row(r, "no_lease");
  // Resource 0 saw no write after the crash; resource 1 went on.
  REQUIRE(end.as_list()[0]["writes"].as_int() == at_crash.as_list()[0]["writes"].as_int());
  REQUIRE(end.as_list()[1]["writes"].as_int() > at_crash.as_list()[1]["writes"].as_int() + 300);
  REQUIRE(end.as_list()[1]["counter"].as_int() == end.as_list()[1]["writes"].as_int());
  REQUIRE(row0.count(Outcome::timeout) > 300);
  REQUIRE(row0.count(Outcome::ok) ==
          end.as_list()[0]["writes"].as_int() + end.as_list()[1]["writes"].as_int());
}
