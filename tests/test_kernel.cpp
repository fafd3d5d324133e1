#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "hldlab/runtime/kernel.hpp"

using namespace hldlab;

TEST_CASE("events run in time order, and in scheduling order at equal times") {
  Kernel k;
  std::vector<std::string> order;
  k.at(30, [&] { order.push_back("c@30"); });
  k.at(10, [&] { order.push_back("a@10"); });
  k.at(20, [&] { order.push_back("b1@20"); });
  k.at(20, [&] { order.push_back("b2@20"); });
  k.at(10, [&] {
    order.push_back("a2@10");
    k.after(0, [&] { order.push_back("a3@10 scheduled by a2"); });
  });
  k.run_before(101);
  REQUIRE(order == std::vector<std::string>{"a@10", "a2@10", "a3@10 scheduled by a2", "b1@20",
                                            "b2@20", "c@30"});
  REQUIRE(k.now() == 101);
}

TEST_CASE("run_before runs nothing at or after its bound and leaves later events pending") {
  Kernel k;
  int ran = 0;
  for (Time t : {5, 10, 15}) k.at(t, [&] { ++ran; });
  k.run_before(10);
  REQUIRE(ran == 1);
  REQUIRE(k.now() == 10);
  REQUIRE(k.pending() == 2);
  REQUIRE(k.next_time() == 10);
}

TEST_CASE("scheduling in the past or with a negative delay is refused with an error") {
  Kernel k;
  k.at(50, [] {});
  k.step();
  REQUIRE_THROWS_WITH(k.at(10, [] {}), Catch::Contains("in the past"));
  REQUIRE_THROWS_WITH(k.after(-1, [] {}), Catch::Contains("negative delay"));
  REQUIRE(k.empty());
}

TEST_CASE("a cancelled event never runs and its id cannot cancel a later event") {
  Kernel k;
  std::vector<int> ran;
  const EventId a = k.at(10, [&] { ran.push_back(1); });
  const EventId b = k.at(20, [&] { ran.push_back(2); });
  REQUIRE(k.cancel(a));
  REQUIRE_FALSE(k.cancel(a));  // already cancelled
  REQUIRE(k.pending() == 1);
  const EventId c = k.at(15, [&] { ran.push_back(3); });  // may reuse a's slot
  REQUIRE_FALSE(k.cancel(a));                              // ... but not a's id
  k.run_before(100);
  REQUIRE(ran == std::vector<int>{3, 2});
  REQUIRE_FALSE(k.cancel(b));  // already ran
  REQUIRE_FALSE(k.cancel(c));
  REQUIRE_FALSE(k.cancel(EventId{}));
}

TEST_CASE("cancelling destroys the captures at once") {
  Kernel k;
  auto token = std::make_shared<int>(7);
  const EventId id = k.after(10, [token] { (void)token; });
  REQUIRE(token.use_count() == 2);
  k.cancel(id);
  REQUIRE(token.use_count() == 1);
}

TEST_CASE("many cancelled timers are swept without changing the order of the live events") {
  Kernel k;
  std::vector<int> ran;
  std::vector<EventId> timeouts;
  for (int i = 0; i < 5000; ++i) {
    timeouts.push_back(k.at(1'000'000 + i, [&ran] { ran.push_back(-1); }));
    if (i % 100 == 0) k.at(1000 + i, [&ran, i] { ran.push_back(i); });
  }
  for (const EventId& t : timeouts) REQUIRE(k.cancel(t));
  REQUIRE(k.pending() == 50);
  k.run_before(Kernel::kNever);
  REQUIRE(ran.size() == 50);
  for (std::size_t i = 0; i < ran.size(); ++i) REQUIRE(ran[i] == static_cast<int>(i * 100));
}

TEST_CASE("an exception leaves step() and consumes only the event that threw") {
  Kernel k;
  int later = 0;
  k.at(1, [] { throw std::runtime_error("boom"); });
  k.at(2, [&] { ++later; });
  REQUIRE_THROWS_WITH(k.step(), "boom");
  REQUIRE(k.pending() == 1);
  k.step();
  REQUIRE(later == 1);
}

TEST_CASE("an action keeps small captures inline and moves large ones intact") {
  int hits = 0;
  struct Big {
    char bytes[200];
  } big{};
  big.bytes[199] = 42;
  Action small([&hits] { ++hits; });
  Action large([&hits, big] { hits += big.bytes[199]; });
  Action moved = std::move(large);
  REQUIRE_FALSE(static_cast<bool>(large));
  small();
  moved();
  REQUIRE(hits == 43);
}
