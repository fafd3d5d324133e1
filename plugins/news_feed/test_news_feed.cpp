#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"pull", "push", "hybrid"};

/// Every variant with `params`, no workload traffic: the requests in `sent` are handed to each
/// system at their arrival time. `user` (if >= 0) is looked up with the "user" operation.
struct Run {
  ExperimentResult result;
  Map user[3];
};

/// A workload that sends nothing within a second (its first request would come after 10^6 s):
/// the tests hand their own requests to the systems.
Workload silent_workload() {
  return hldlab::testing::constant_workload(1e-6);
}

Run crafted_run(const std::vector<Request>& sent, const Map& params = {}, std::int64_t user = -1,
                std::uint64_t seed = 1) {
  const Workload w = silent_workload();
  Run run;
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"news_feed", v, params});
  run.result = hldlab::testing::run_experiment(w, seconds(1), systems, seed, [&](Experiment& e) {
    int i = 0;
    for (const auto& s : e.systems()) {
      if (user >= 0) run.user[i++] = s->call("user", Map{{"id", user}}).as_map();
      for (const Request& r : sent) e.at(r.arrival, [&slot = *s, r] { slot.deliver(r); });
    }
  });
  return run;
}

Request post(std::uint64_t id, std::uint64_t author, Time at) {
  Request r;
  r.id = id;
  r.key = author;
  r.arrival = at;
  r.op = Op::write;
  return r;
}

Request read(std::uint64_t id, std::uint64_t reader, Time at) {
  Request r = post(id, reader, at);
  r.op = Op::read;
  return r;
}

std::int64_t as_int(const Map& m, const char* name) {
  return m.at(name).as_int();
}

}  // namespace

TEST_CASE("every variant builds the same follower graph from the seed") {
  const Run run = crafted_run({}, {}, 0);
  for (int i = 1; i < 3; ++i) {
    CHECK(as_int(run.user[i], "followers") == as_int(run.user[0], "followers"));
    CHECK(as_int(run.user[i], "follows") == as_int(run.user[0], "follows"));
  }
  CHECK(run.user[0].at("celebrity").as_bool());  // user 0, the most followed, with defaults
}

TEST_CASE(
    "one post by the most followed account: push writes once per follower, pull and hybrid "
    "once") {
  const Time at = milliseconds(100);
  const Run run = crafted_run({post(0, 0, at)}, {}, 0);
  const std::int64_t followers = as_int(run.user[0], "followers");
  REQUIRE(followers > 1000);  // a celebrity under the default threshold
  const auto& pull = row(run.result, "pull");
  const auto& push = row(run.result, "push");
  const auto& hybrid = row(run.result, "hybrid");
  for (const auto* s : {&pull, &push, &hybrid}) {
    REQUIRE(s->requests == 1);
    CHECK(s->completed == 1);
    CHECK(figure(*s, "posts") == 1);
  }
  CHECK(figure(pull, "writes_per_post") == 1);
  CHECK(figure(hybrid, "writes_per_post") == 1);
  CHECK(figure(push, "writes_per_post") == 1 + followers);
  CHECK(figure(push, "max_writes_per_post") == 1 + followers);
  // Storage: 1024 bytes per post, 16 per timeline entry.
  CHECK(figure(pull, "storage_bytes") == 1024);
  CHECK(figure(hybrid, "storage_bytes") == 1024);
  CHECK(figure(push, "storage_bytes") == 1024 + 16 * followers);
  // Staleness: pull and hybrid: the post's own insert (50 us). Push: the insert, then batches
  // of 100 inserts of 50 us (5 ms each), 4 at a time; 99 % of the followers have it when the
  // batch holding follower ceil(0.99 F) ends.
  CHECK(figure(pull, "staleness_p99") == Approx(50e-6).epsilon(0.01));
  CHECK(figure(hybrid, "staleness_p99") == Approx(50e-6).epsilon(0.01));
  const auto to_see = static_cast<std::int64_t>(std::ceil(0.99 * static_cast<double>(followers)));
  const std::int64_t batch = (to_see + 99) / 100;  // 1-based index of that batch
  const std::int64_t round = (batch + 3) / 4;      // the round of 4 workers it runs in
  const std::int64_t last = (followers + 99) / 100;
  const std::int64_t size = batch == last ? followers - 100 * (last - 1) : 100;
  const double expected = 50e-6 + (round - 1) * 5e-3 + static_cast<double>(size) * 50e-6;
  CHECK(figure(push, "staleness_p99") == Approx(expected).epsilon(0.01));
  CHECK(figure(push, "staleness_max") == Approx(expected).epsilon(0.01));
}

TEST_CASE(
    "a feed read costs pull one query per follow, push one, hybrid one plus one per celebrity "
    "followed; on an idle DB it takes queries x query_time") {
  for (std::int64_t user : {1, 17, 4242}) {
    const Run run =
        crafted_run({read(0, static_cast<std::uint64_t>(user), milliseconds(10))}, {}, user);
    const std::int64_t follows = as_int(run.user[0], "follows");
    const std::int64_t celebrities = as_int(run.user[0], "celebrity_follows");
    INFO("user " << user << " follows " << follows << ", celebrities " << celebrities);
    REQUIRE(celebrities <= follows);
    const double queries[] = {static_cast<double>(std::max<std::int64_t>(1, follows)), 1.0,
                              1.0 + static_cast<double>(celebrities)};
    for (int i = 0; i < 3; ++i) {
      const auto& s = row(run.result, kVariants[i]);
      INFO(kVariants[i]);
      CHECK(as_int(run.user[i], "read_queries") == queries[i]);
      CHECK(figure(s, "queries_per_read") == queries[i]);
      CHECK(figure(s, "read_p99") == Approx(queries[i] * 200e-6).epsilon(0.01));
      CHECK(figure(s, "posts") == 0);
    }
  }
}

TEST_CASE("a normal account's post is pushed by push and hybrid alike; pull never fans out") {
  // The least followed users have far fewer than 1000 followers.
  const std::int64_t author = 9999;
  const Run run = crafted_run({post(0, author, milliseconds(10))}, {}, author);
  const std::int64_t followers = as_int(run.user[0], "followers");
  REQUIRE_FALSE(run.user[0].at("celebrity").as_bool());
  CHECK(figure(row(run.result, "pull"), "writes_per_post") == 1);
  CHECK(figure(row(run.result, "push"), "writes_per_post") == 1 + followers);
  CHECK(figure(row(run.result, "hybrid"), "writes_per_post") == 1 + followers);
}

TEST_CASE("posts queued behind a celebrity's fan-out reach their followers late under push only") {
  // The celebrity posts at 10 ms, a normal account 1 ms later: under push its one batch waits
  // for the celebrity's batches ahead of it in the fan-out queue; hybrid has no queue.
  const std::int64_t author = 500;
  const Run run =
      crafted_run({post(0, 0, milliseconds(10)), post(1, author, milliseconds(11))}, {}, author);
  const auto& push = row(run.result, "push");
  const auto& hybrid = row(run.result, "hybrid");
  // Push: at least the celebrity's first rounds (5 ms each) are ahead of the small post.
  CHECK(figure(push, "staleness_p99") > 0.02);
  CHECK(figure(hybrid, "staleness_max") < 0.006);  // one insert + one batch of <= 100
}

TEST_CASE("the mean follows per user agrees with the lognormal's mean within 10% on 5 seeds") {
  // lognormal(median 20, P99 300): sigma = ln(15) / 2.326, mean = 20 exp(sigma^2 / 2) = 39.4.
  // Standard deviation 66.7, over 10000 users a standard error of 0.67 (1.7 %).
  const double sigma = std::log(15.0) / 2.326347874;
  const double mean = 20 * std::exp(sigma * sigma / 2);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Map graph;
    hldlab::testing::run_experiment(
        silent_workload(), milliseconds(1), {{"news_feed", "pull"}}, seed,
        [&](Experiment& e) { graph = e.systems()[0]->call("graph", Map{}).as_map(); });
    const double per_user = static_cast<double>(graph.at("follows").as_int()) / 10000.0;
    INFO("seed " << seed);
    CHECK(per_user == Approx(mean).epsilon(0.1));
    CHECK(graph.at("celebrities").as_int() > 0);
  }
}

TEST_CASE("after a warm-up the figures count only the requests that arrived after it") {
  Workload w = hldlab::testing::constant_workload(100, 0, 10000);
  w.write_share = 0.5;
  const auto r = hldlab::testing::run_experiment(w, {.duration = seconds(2), .warmup = seconds(1)},
                                                 {{"news_feed", "pull"}, {"news_feed", "push"}});
  for (const char* v : {"pull", "push"}) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(s.requests == 100);        // arrivals at 1.00, 1.01, ..., 1.99 s
    CHECK(figure(s, "posts") > 30);  // about half of the 100 (binomial sd 5)
    CHECK(figure(s, "posts") < 70);
  }
  CHECK(figure(row(r, "pull"), "posts") == figure(row(r, "push"), "posts"));
}

TEST_CASE("the script's claims hold") {
  const ScriptResult r = hldlab::testing::run_script_file("news_feed.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
