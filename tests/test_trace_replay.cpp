// Replaying a trace: hldlab's LRU and FIFO caches miss exactly as often as an independent,
// trivially simple reference implementation on the same generated trace.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <list>
#include <unordered_map>
#include <unordered_set>

#include "hldlab/runtime/script.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
namespace fs = std::filesystem;

namespace {

std::int64_t lru_misses(const std::vector<std::uint64_t>& keys, std::size_t capacity) {
  std::list<std::uint64_t> order;  // front: most recent
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> where;
  std::int64_t misses = 0;
  for (auto k : keys) {
    if (auto it = where.find(k); it != where.end()) {
      order.splice(order.begin(), order, it->second);
      continue;
    }
    ++misses;
    if (order.size() == capacity) {
      where.erase(order.back());
      order.pop_back();
    }
    order.push_front(k);
    where[k] = order.begin();
  }
  return misses;
}

std::int64_t fifo_misses(const std::vector<std::uint64_t>& keys, std::size_t capacity) {
  std::list<std::uint64_t> queue;  // front: the oldest insertion
  std::unordered_set<std::uint64_t> cached;
  std::int64_t misses = 0;
  for (auto k : keys) {
    if (cached.count(k)) continue;
    ++misses;
    if (queue.size() == capacity) {
      cached.erase(queue.front());
      queue.pop_front();
    }
    queue.push_back(k);
    cached.insert(k);
  }
  return misses;
}

}  // namespace

TEST_CASE("on a replayed trace, LRU and FIFO miss exactly as often as reference implementations") {
  // A skewed trace: key = floor(5000 * u^3) over a fixed LCG (a hot head and a long tail).
  std::vector<std::uint64_t> keys;
  std::uint64_t state = 12345;
  for (int i = 0; i < 20000; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = static_cast<double>(state >> 11) / 9007199254740992.0;
    keys.push_back(static_cast<std::uint64_t>(5000 * u * u * u));
  }
  char templ[] = "/tmp/hldlab-trace-XXXXXX";
  REQUIRE(mkdtemp(templ) != nullptr);
  const fs::path dir = templ;
  {
    std::ofstream out(dir / "trace.csv");
    out << "key;op\n";
    for (auto k : keys) out << "object-" << k << ";GET\n";
  }
  for (const std::size_t capacity : {50, 400}) {
    INFO("capacity " << capacity);
    // One request a second: every miss's fill lands long before the next request.
    const std::string script = R"(
local lab = require "hldlab"
local exp = lab.experiment{ name = "replay", duration = "6h" }
exp:workload{ arrivals = lab.trace{ file = "trace.csv", columns = { key = 1, op = 2 },
                                    has_header = true, delimiter = ";", rps = 1 } }
for _, v in ipairs{ "lru", "fifo" } do
  exp:add{ lesson = "caching", variant = v, params = { capacity = )" +
                               std::to_string(capacity) + R"( } }
end
exp:run()
)";
    ScriptOptions options;
    options.print_reports = false;
    options.data_dirs = {dir.string()};
    const ScriptResult r =
        run_script_text(script, "replay.lua", hldlab::testing::registry(), options);
    INFO(r.error);
    REQUIRE(r.error.empty());
    const auto& lru = hldlab::testing::row(r.experiments.at(0), "lru");
    const auto& fifo = hldlab::testing::row(r.experiments.at(0), "fifo");
    CHECK(lru.requests == 20000);
    CHECK(lru.count(Outcome::miss) == lru_misses(keys, capacity));
    CHECK(fifo.count(Outcome::miss) == fifo_misses(keys, capacity));
    CHECK(lru.count(Outcome::miss) < fifo.count(Outcome::miss));  // the trace is skewed
  }
  fs::remove_all(dir);
}
