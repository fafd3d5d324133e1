// The SDK's building blocks on their own: slot pool, FIFO, queueing server, time rounding and
// the distributions' exact properties, LessonInfo's defaults and Params' typed reads.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/fifo.hpp"
#include "hldlab/lesson.hpp"
#include "hldlab/runtime/kernel.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

using namespace hldlab;

TEST_CASE("a slot pool reuses released slots, last released first, before growing") {
  SlotPool<int> pool;
  const SlotHandle a = pool.acquire(), b = pool.acquire(), c = pool.acquire();
  CHECK(a.index == 0);
  CHECK(b.index == 1);
  CHECK(c.index == 2);
  pool[b] = 42;
  pool.release(a);
  pool.release(b);
  CHECK(pool.in_use() == 1);
  const SlotHandle b2 = pool.acquire();
  CHECK(b2.index == b.index);
  CHECK(pool[b2] == 42);  // a reused slot keeps its old value
  CHECK(pool.acquire().index == a.index);
  CHECK(pool.acquire().index == 3);
  CHECK(pool.in_use() == 4);
}

TEST_CASE("a stale slot handle is recognised after its slot was released and reused") {
  SlotPool<int> pool;
  const SlotHandle h = pool.acquire();
  pool[h] = 1;
  pool.release(h);
  const SlotHandle again = pool.acquire();
  REQUIRE(again.index == h.index);
  CHECK(pool.get(h) == nullptr);
  CHECK(pool.get(again) != nullptr);
  CHECK_FALSE(pool.live(h));
  CHECK_THROWS_AS(pool.release(h), std::logic_error);
}

TEST_CASE("a slot pool visits the slots in use by index, and the visitor may release them") {
  SlotPool<int> pool;
  std::vector<SlotHandle> handles;
  for (int i = 0; i < 5; ++i) {
    handles.push_back(pool.acquire());
    pool[handles.back()] = i * 10;
  }
  pool.release(handles[1]);
  pool.release(handles[3]);
  std::vector<int> seen;
  pool.for_each([&](SlotHandle h, int& v) {
    seen.push_back(v);
    pool.release(h);
  });
  CHECK(seen == std::vector<int>{0, 20, 40});
  CHECK(pool.in_use() == 0);
}

TEST_CASE("a fifo keeps order across growth and wrap-around and can drop elements in place") {
  Fifo<int> q;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 7; ++i) q.push_back(next_in++);
    for (int i = 0; i < 5; ++i) REQUIRE(q.pop_front() == next_out++);
  }
  REQUIRE(q.size() == 100);
  q.retain([](int v) { return v % 2 == 0; });
  REQUIRE(q.size() == 50);
  REQUIRE(q.front() == 250);
  REQUIRE(q[49] == 348);
  CHECK_THROWS_AS(Fifo<int>().pop_front(), std::logic_error);
}

namespace {
/// A SimContext on a bare kernel, for blocks that need one.
struct KernelContext final : SimContext {
  Kernel kernel;
  Rng random{1};
  std::string label = "test";
  Time now() const override { return kernel.now(); }
  EventId after(Time d, Action a) override { return kernel.after(d, std::move(a)); }
  bool cancel(EventId id) override { return kernel.cancel(id); }
  Rng& rng() override { return random; }
  std::uint64_t salt(const std::string& purpose) const override {
    return Rng::hash_name(purpose.c_str());
  }
  const std::string& name() const override { return label; }
};
}  // namespace

TEST_CASE("a server runs c jobs at once, queues the rest in order and refuses past its limit") {
  KernelContext ctx;
  std::vector<std::pair<int, Time>> done;
  Server<int> s(ctx, {.workers = 2, .queue_limit = 2}, [&](int& job) {
    done.push_back({job, ctx.now()});
  });
  CHECK(s.submit(1, 10) == Admission::started);
  CHECK(s.submit(2, 10) == Admission::started);
  CHECK(s.submit(3, 10) == Admission::queued);
  CHECK(s.submit(4, 5) == Admission::queued);
  CHECK(s.submit(5, 10) == Admission::rejected);
  CHECK(s.outstanding() == 4);
  ctx.kernel.run_before(1000);
  CHECK(done == std::vector<std::pair<int, Time>>{{1, 10}, {2, 10}, {4, 15}, {3, 20}});
  CHECK(s.served() == 4);
  CHECK(s.busy_seconds() == Approx(to_seconds(10 + 10 + 10 + 5)));
}

TEST_CASE("a slowed server multiplies the work of jobs that start later, a fast one divides it") {
  KernelContext ctx;
  std::vector<Time> done;
  Server<int> s(ctx, {.workers = 1, .speed = 2}, [&](int&) { done.push_back(ctx.now()); });
  s.submit(0, 100);  // 50 at speed 2
  s.set_slow(10);    // the running job keeps its time; the next one takes 100 / 2 * 10
  s.submit(1, 100);
  ctx.kernel.run_before(1000);
  CHECK(done == std::vector<Time>{50, 550});
}

TEST_CASE("a server slowed for a while is back to normal speed afterwards") {
  KernelContext ctx;
  std::vector<Time> done;
  Server<int> s(ctx, {.workers = 1}, [&](int&) { done.push_back(ctx.now()); });
  s.set_slow_for(10, 50);
  s.submit(0, 10);  // starts slowed: 100
  ctx.kernel.run_before(60);
  s.submit(1, 10);  // queued behind it; starts at 100, after the slow-down: 10
  ctx.kernel.run_before(1000);
  CHECK(done == std::vector<Time>{100, 110});
  CHECK(s.slow_factor() == 1);
}

TEST_CASE("a killed server hands back every running then queued job and refuses until restart") {
  KernelContext ctx;
  int completed = 0;
  std::vector<int> lost;
  Server<int> s(ctx, {.workers = 1}, [&](int&) { ++completed; });
  for (int i = 0; i < 4; ++i) s.submit(i, 10);
  ctx.kernel.run_before(15);  // job 0 done, job 1 running
  s.kill([&](int& job) { lost.push_back(job); });
  CHECK(lost == std::vector<int>{1, 2, 3});
  CHECK(s.submit(9, 10) == Admission::down);
  ctx.kernel.run_before(1000);
  CHECK(completed == 1);  // the running job's completion was cancelled
  s.restart();
  CHECK(s.submit(9, 10) == Admission::started);
}

TEST_CASE("a lesson is open to every generic fault but slow unless it uses the service time") {
  using Faults = std::vector<std::string>;
  hldlab::LessonInfo uses{"a", "A", "p", "f", {}, {}, {}, {}, {}, {}, {}};
  CHECK(uses.generic_faults == Faults{"latency", "errors", "blackhole", "slow"});
  hldlab::LessonInfo does_not{"b", "B", "p", "f", {}, {}, {}, {}, {}, {}, {}, false};
  CHECK(does_not.generic_faults == Faults{"latency", "errors", "blackhole"});
  hldlab::LessonInfo chosen{"c", "C", "p", "f", {}, {}, {}, {}, {}, {}, {}, false, {"errors"}};
  CHECK(chosen.generic_faults == Faults{"errors"});
}

TEST_CASE("an integer parameter is read as a narrower type only when that type can hold it") {
  const hldlab::Params p(hldlab::Map{{"workers", hldlab::Value(std::int64_t{8})},
                                     {"huge", hldlab::Value(std::int64_t{5'000'000'000})},
                                     {"negative", hldlab::Value(std::int64_t{-1})}});
  CHECK(p.integer<int>("workers") == 8);
  CHECK(p.integer("huge") == 5'000'000'000);
  CHECK_THROWS_WITH(p.integer<int>("huge"), Catch::Contains("'huge' = 5000000000 does not fit"));
  CHECK_THROWS_WITH(p.integer<std::size_t>("negative"), Catch::Contains("'negative' = -1"));
  CHECK_THROWS_WITH(p.integer<int>("absent"), Catch::Contains("undeclared parameter 'absent'"));
}

TEST_CASE("durations round to the nearest nanosecond and refuse what an int64 cannot hold") {
  CHECK(seconds(1.001) == 1'001'000'000);
  CHECK(milliseconds(0.0000006) == 1);
  CHECK(microseconds(-1.5) == -1500);
  CHECK_THROWS_AS(seconds(1e11), std::range_error);  // 3000 years
  CHECK_THROWS_AS(round_time(std::nan("")), std::range_error);
  CHECK(scale_time(3, 0.5) == 2);
}

TEST_CASE("a lognormal whose p99 equals its median is that constant") {
  const auto d = Distribution::lognormal(5e6, 5e6);
  Rng rng(1);
  for (int i = 0; i < 10; ++i) REQUIRE(d.sample(rng) == 5e6);
}

TEST_CASE("a heavy pareto is refused as a duration unless capped, and the cap holds") {
  const auto wild = Distribution::pareto(1e6, 0.1);
  CHECK(wild.exceeds_time_range());
  CHECK_FALSE(Distribution::pareto(1e6, 1.5).exceeds_time_range());
  const auto capped = wild.capped(3.6e12);
  CHECK_FALSE(capped.exceeds_time_range());
  Rng rng(4);
  for (int i = 0; i < 100000; ++i) REQUIRE(capped.sample_time(rng) <= seconds(3600));
}

TEST_CASE("the ziggurats have the published tail starts and 256 layers of equal area") {
  // The values known for 256 layers (Marsaglia and Tsang, 2000, give the exponential's).
  const detail::Ziggurat& normal = detail::normal_ziggurat();
  const detail::Ziggurat& exponential = detail::exponential_ziggurat();
  CHECK(normal.r == Approx(3.6541528853610088).epsilon(1e-12));
  CHECK(exponential.r == Approx(7.697117470131487).epsilon(1e-12));
  for (const detail::Ziggurat* z : {&normal, &exponential}) {
    const double v = z->x[0] * z->f[1];  // the base strip, tail included
    for (int i = 1; i < detail::Ziggurat::kLayers; ++i) {
      INFO("layer " << i);
      REQUIRE(z->x[i] > z->x[i + 1]);
      REQUIRE(z->x[i] * (z->f[i + 1] - z->f[i]) == Approx(v).epsilon(1e-9));
    }
  }
}

namespace {
// Draws n deviates and checks P(X > x) at each x against the exact tail within 5 binomial
// standard deviations: the fast layers, the wedges and the tail beyond r all count.
template <class Draw, class Tail>
void check_tails(Draw draw, Tail exact, std::initializer_list<double> xs) {
  const int n = 4'000'000;
  std::vector<double> above(xs.size());
  for (int i = 0; i < n; ++i) {
    const double d = draw();
    std::size_t k = 0;
    for (double x : xs) above[k++] += d > x ? 1 : 0;
  }
  std::size_t k = 0;
  for (double x : xs) {
    const double p = exact(x);
    INFO("P(X > " << x << "): measured " << above[k] / n << ", exact " << p);
    CHECK(std::abs(above[k++] - n * p) < 5 * std::sqrt(n * p * (1 - p)) + 1);
  }
}
}  // namespace

TEST_CASE("normal deviates follow the standard normal, in the body and the tail") {
  Rng rng(8);
  check_tails([&] { return rng.normal(); },
              [](double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); },
              {-4, -3.7, -2, -1, -0.3, 0, 0.01, 0.5, 1, 1.5, 2.5, 3, 3.6, 3.7, 4, 4.5});
}

TEST_CASE("exponential deviates follow the exponential, in the body and the tail") {
  Rng rng(9);
  check_tails([&] { return rng.exponential(2); }, [](double x) { return std::exp(-x / 2); },
              {0.001, 0.1, 0.5, 1, 2, 4, 8, 14, 15, 15.5, 16, 20, 25});
}
