#include <catch2/catch.hpp>

#include "hldlab/slot_pool.hpp"

using hldlab::SlotPool;

TEST_CASE("a slot pool reuses released slots, last released first, before growing") {
  SlotPool<int> pool;
  const std::uint32_t a = pool.acquire(), b = pool.acquire(), c = pool.acquire();
  CHECK(a == 0);
  CHECK(b == 1);
  CHECK(c == 2);
  pool[b] = 42;
  pool.release(a);
  pool.release(b);
  CHECK(pool.in_use() == 1);
  CHECK(pool.acquire() == b);
  CHECK(pool[b] == 42);  // a reused slot keeps its old value
  CHECK(pool.acquire() == a);
  CHECK(pool.acquire() == 3);
  CHECK(pool.in_use() == 4);
}
