#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"polling", "long_polling", "push", "push_store_forward"};

/// A workload that sends nothing within the run: the tests hand their own messages in.
Workload silent_workload() {
  return hldlab::testing::constant_workload(1e-6);
}

Request message(std::uint64_t id, std::uint64_t conversation, Time at) {
  Request r;
  r.id = id;
  r.key = conversation;
  r.arrival = at;
  return r;
}

/// Every variant with `params` over `duration` on `w`; `setup` runs on each system's slot.
ExperimentResult run_all(const Workload& w, Time duration, const Map& params,
                         const std::function<void(Experiment&, SystemSlot&)>& setup = {},
                         std::uint64_t seed = 1) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"chat", v, params});
  return hldlab::testing::run_experiment(w, duration, systems, seed, [&](Experiment& e) {
    if (!setup) return;
    for (const auto& s : e.systems()) setup(e, *s);
  });
}

/// Always online, no jitter: every delay is exact.
const Map kSteady{{"users", 100}, {"offline_mean", "0s"}, {"jitter", "0s"}};

}  // namespace

TEST_CASE(
    "with everybody online and no jitter, push and long polling deliver in exactly one RTT, "
    "polling in RTT plus the wait for the recipient's next poll") {
  // One message at 5.0003 s in conversation 7; the open long poll is answered at once.
  const auto r = run_all(silent_workload(), seconds(6), kSteady, [](Experiment& e, SystemSlot& s) {
    e.at(milliseconds(5000.3), [&s] { s.deliver(message(0, 7, milliseconds(5000.3))); });
  });
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    REQUIRE(s.requests == 1);
    CHECK(s.completed == 1);
    CHECK(figure(s, "delivered") == 1);
    CHECK(figure(s, "lost") == 0);
    CHECK(figure(s, "offline_delivery_p50") == 0);
  }
  CHECK(figure(row(r, "push"), "online_delivery_mean") == Approx(0.050).epsilon(1e-6));
  CHECK(figure(row(r, "push_store_forward"), "online_delivery_mean") ==
        Approx(0.050).epsilon(1e-6));
  CHECK(figure(row(r, "long_polling"), "online_delivery_mean") == Approx(0.050).epsilon(1e-6));
  const double polled = figure(row(r, "polling"), "online_delivery_mean");
  CHECK(polled >= 0.050);
  CHECK(polled <= 1.050);
}

TEST_CASE(
    "polling costs the DB exactly one query per online user per interval, whatever the traffic; "
    "push costs one insert per message") {
  // 100 users polling every second, phases in [0, 1 s): 5 polls each before the message at 5 s.
  const auto r = run_all(silent_workload(), seconds(6), kSteady, [](Experiment& e, SystemSlot& s) {
    e.at(seconds(5), [&s] { s.deliver(message(0, 3, seconds(5))); });
  });
  CHECK(figure(row(r, "polling"), "db_qps") == Approx(100.0).epsilon(1e-9));
  // Long polling: one open request per user at the start (none answered before 5 s).
  CHECK(figure(row(r, "long_polling"), "db_qps") == Approx(100.0 / 5).epsilon(1e-9));
  CHECK(figure(row(r, "push"), "db_qps") == 0);
  CHECK(figure(row(r, "push"), "db_queries") == 1);  // the message's insert
  CHECK(figure(row(r, "push_store_forward"), "db_queries") == 1);
  CHECK(figure(row(r, "push"), "queries_per_message") == 1);
  // The long poll answered by the message and reopened: insert + 100 opens + 1 reopen.
  CHECK(figure(row(r, "long_polling"), "db_queries") == 102);
}

TEST_CASE("polling delivers in RTT + interval / 2 on average, agreeing with theory within 5%") {
  // Poisson messages, poll phases uniform: the wait for the next poll is uniform in [0, 1 s).
  // 3000 messages: the standard error of the mean wait is 0.29 / sqrt(3000) = 5 ms (1 % of
  // 0.55 s).
  Workload w = hldlab::testing::poisson_workload(300, 0, 1000);
  const auto r = run_all(w, seconds(10), {{"offline_mean", "0s"}, {"jitter", "0s"}});
  CHECK(figure(row(r, "polling"), "online_delivery_mean") == Approx(0.55).epsilon(0.05));
  CHECK(figure(row(r, "polling"), "db_qps") == Approx(2000 + 300).epsilon(0.05));
  CHECK(figure(row(r, "push"), "online_delivery_mean") == Approx(0.05).epsilon(1e-6));
  for (const char* v : kVariants) CHECK(figure(row(r, v), "out_of_order") == 0);  // no jitter
}

TEST_CASE(
    "a message for a disconnected user is lost by push, kept by the others and delivered when it "
    "comes back") {
  // User 14 (conversation 7 with user 15) is offline from 1 s to 3 s. Messages of conversation
  // 7 go to 14 or 15 (by a hash of the id): send 20 of them at 2 s, 1 ms apart.
  const auto r = run_all(silent_workload(), seconds(4), kSteady, [](Experiment& e, SystemSlot& s) {
    e.at(seconds(1), [&s] { s.inject("disconnect", Map{{"user", 14}, {"duration", "2s"}}); });
    for (int i = 0; i < 20; ++i) {
      const Time at = seconds(2) + milliseconds(i);
      e.at(at, [&s, i, at] { s.deliver(message(static_cast<std::uint64_t>(i), 7, at)); });
    }
  });
  const auto& push = row(r, "push");
  const double lost = figure(push, "lost");
  REQUIRE(lost > 0);  // some of the 20 went to user 14
  REQUIRE(lost < 20);
  CHECK(push.count(Outcome::error) == lost);
  CHECK(figure(push, "delivered") == 20 - lost);
  for (const char* v : {"polling", "long_polling", "push_store_forward"}) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "lost") == 0);
    CHECK(figure(s, "delivered") == 20);
    // Stored at 2.025 s, the user is back at 3 s and has them by 3 s + RTT (+ a poll wait).
    CHECK(figure(s, "offline_delivery_p50") >= 0.97);
  }
  // Store and forward: reconnect at 3 s, fetch at 3.025 s, answer at 3.05 s: the first message
  // (sent at 2 s) took 1.05 s, the last 1.031 s.
  CHECK(figure(row(r, "push_store_forward"), "offline_delivery_p50") == Approx(1.04).epsilon(0.02));
}

TEST_CASE(
    "with jitter, pushed messages of a busy conversation overtake each other; sequence numbers "
    "restore the order") {
  // 200 messages/s all in one conversation: 5 ms apart against a 10 ms mean jitter.
  Workload w = hldlab::testing::poisson_workload(200, 0, 1);
  const auto r = run_all(w, seconds(5), {{"users", 100}, {"offline_mean", "0s"}});
  CHECK(figure(row(r, "push"), "out_of_order") > 50);
  for (const char* v : {"polling", "long_polling", "push_store_forward"}) {
    INFO(v);
    CHECK(figure(row(r, v), "out_of_order") == 0);
    CHECK(figure(row(r, v), "lost") == 0);
  }
  // Holding back costs latency: the order is paid for in waiting.
  CHECK(figure(row(r, "push_store_forward"), "online_delivery_p99") >=
        figure(row(r, "push"), "online_delivery_p99"));
}

TEST_CASE("plain push loses about the offline share of messages (offline / (online + offline))") {
  // 20 % offline; 2000 users, 3000 messages per seed: lost share 0.2 within 0.04 on 3 seeds.
  Workload w = hldlab::testing::poisson_workload(300, 0, 1000);
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    std::vector<hldlab::testing::SystemSpec> systems{{"chat", "push", {}}};
    const auto r = hldlab::testing::run_experiment(w, seconds(10), systems, seed);
    const auto& s = row(r, "push");
    INFO("seed " << seed);
    CHECK(figure(s, "lost") / static_cast<double>(s.requests) == Approx(0.2).margin(0.04));
  }
}

TEST_CASE("after a warm-up the figures count only the messages that arrived after it") {
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(100, 0, 1000),
                                                 {.duration = seconds(2), .warmup = seconds(1)},
                                                 {{"chat", "push_store_forward", {}}});
  const auto& s = row(r, "push_store_forward");
  CHECK(s.requests == 100);
  CHECK(figure(s, "delivered") == 100);
}

TEST_CASE("the script's claims hold") {
  const ScriptResult r = hldlab::testing::run_script_file("chat.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
