#include <catch2/catch.hpp>
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
  k.run_until(100);
  REQUIRE(order == std::vector<std::string>{"a@10", "a2@10", "a3@10 scheduled by a2", "b1@20",
                                            "b2@20", "c@30"});
  REQUIRE(k.now() == 100);
}

TEST_CASE("run_until runs nothing after its bound and leaves later events pending") {
  Kernel k;
  int ran = 0;
  for (Time t : {5, 10, 15}) k.at(t, [&] { ++ran; });
  REQUIRE(k.run_until(10) == 2);
  REQUIRE(ran == 2);
  REQUIRE(k.now() == 10);
  REQUIRE(k.pending() == 1);
  REQUIRE(k.next_time() == 15);
}

TEST_CASE("an event scheduled in the past runs at the current time") {
  Kernel k;
  Time seen = -1;
  k.at(50, [&] { k.at(10, [&] { seen = k.now(); }); });
  k.run_until(100);
  REQUIRE(seen == 50);
}

namespace {
struct Owner : EventOwner {
  std::string why;
  bool failed() const override { return !why.empty(); }
  void fail(const std::string& w) override { why = w; }
};
}  // namespace

TEST_CASE(
    "an exception in an owned event fails its owner, skips its later events, and the run goes on") {
  Kernel k;
  Owner owner;
  int later_owned = 0, unowned = 0;
  k.at(
      1, [] { throw std::runtime_error("boom"); }, &owner);
  k.at(
      2, [&] { ++later_owned; }, &owner);
  k.at(3, [&] { ++unowned; });
  k.run_until(10);
  REQUIRE(owner.why == "boom");
  REQUIRE(later_owned == 0);
  REQUIRE(unowned == 1);
}

TEST_CASE("an exception in an unowned event leaves run_until") {
  Kernel k;
  k.at(1, [] { throw std::runtime_error("script error"); });
  REQUIRE_THROWS_WITH(k.run_until(10), "script error");
}
