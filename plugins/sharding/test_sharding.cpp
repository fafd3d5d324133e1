#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// Poisson arrivals on a million keys, exponential service of mean `service`.
Workload traffic(double rps, Time service, double write_share = 0) {
  Workload w = hldlab::testing::poisson_workload(rps, service, 1000000);
  w.service = Distribution::exponential(static_cast<double>(service));
  w.write_share = write_share;
  return w;
}

Workload write_heavy() {
  return traffic(700, milliseconds(5), 0.3);  // 8 shards of 200 rps each
}

std::int64_t total(const Value& shards, const char* field) {
  std::int64_t sum = 0;
  for (const Value& s : shards.as_list()) sum += s[field].as_int();
  return sum;
}

}  // namespace

TEST_CASE("range sharding on a monotonic key sends every write to the last shard") {
  Experiment e({.duration = seconds(30)});
  e.set_workload(write_heavy());
  SystemSlot& range = e.add(registry(), "sharding", "range");
  SystemSlot& hash = e.add(registry(), "sharding", "hash");
  e.add(registry(), "sharding", "consistent");
  const auto r = e.run();
  const Value shards = range.call("shards", {});
  const std::int64_t writes = total(shards, "writes");
  REQUIRE(writes > 5000);
  // Exactly all of them on shard 7, none elsewhere.
  CHECK(shards.as_list()[7]["writes"].as_int() == writes);
  // Per shard: the last one's parts wait far longer than any other shard's.
  for (int i = 0; i < 7; ++i)
    CHECK(shards.as_list()[7]["p99"].as_double() > 20 * shards.as_list()[i]["p99"].as_double());
  CHECK(figure(r, "range", "write_max_share") == 1.0);
  CHECK(figure(r, "range", "same_shard_writes") == 1.0);
  // Hash: ~1/8 each; the chance that two consecutive writes share a shard is ~1/8.
  CHECK(figure(r, "hash", "write_max_share") < 0.14);
  CHECK(std::abs(figure(r, "hash", "same_shard_writes") - 0.125) < 0.02);
  CHECK(total(hash.call("shards", {}), "writes") == writes);  // same traffic
  // The last shard gets 210 writes/s + its reads > 200/s: its queue grows without bound.
  INFO("P99 range " << row(r, "range").p99 << " hash " << row(r, "hash").p99);
  CHECK(row(r, "range").p99 > 20 * row(r, "hash").p99);
  CHECK(figure(r, "range", "load_max_mean") > 1.8);
  CHECK(row(r, "consistent").p99 < 2 * row(r, "hash").p99);
}

TEST_CASE("a range scan hits one shard under range sharding and every shard under hashing") {
  const Map scans{{"scan_share", 0.5}, {"scan_length", 100}};
  const auto r = run_experiment(
      traffic(200, milliseconds(2)), seconds(20),
      {{"sharding", "range", scans},
       {"sharding", "hash", scans},
       {"sharding", "consistent", scans},
       {"sharding", "hash", {{"scan_share", 0.5}, {"scan_length", 1}}, "hash_point"}});
  // 12 500 records per range: a 100-key scan crosses a boundary with probability 99/12 500.
  CHECK(figure(r, "range", "fanout") < 1.03);
  CHECK(figure(r, "range", "fanout") > 1.0);
  // 100 hashed keys miss a given shard of 8 with probability (7/8)^100 ~ 2e-6.
  // (Scans that start near the last key read fewer keys.)
  CHECK(figure(r, "hash", "fanout") > 7.99);
  CHECK(figure(r, "consistent", "fanout") > 7.9);
  CHECK(figure(r, "hash_point", "fanout") == 1.0);
  // A scan waits for the slowest of 8 parts: E[max of 8 exponentials] = H(8) ~ 2.7 means, so
  // half the requests take ~2.7x longer on average.
  CHECK(row(r, "hash").mean > 1.5 * row(r, "range").mean);
}

TEST_CASE("adding a shard moves 8/9 of the data with hash, 1/9 with consistent, half a range") {
  Experiment e;
  SystemSlot& range = e.add(registry(), "sharding", "range", {{"records", 90000}});
  SystemSlot& hash = e.add(registry(), "sharding", "hash", {{"records", 90000}});
  SystemSlot& consistent = e.add(registry(), "sharding", "consistent", {{"records", 90000}});
  const Value a = range.call("add_shard", {});
  const Value b = hash.call("add_shard", {});
  const Value c = consistent.call("add_shard", {});
  INFO("moved: range " << a["moved"].as_double() << " hash " << b["moved"].as_double()
                       << " consistent " << c["moved"].as_double());
  CHECK(b["shards"].as_int() == 9);
  CHECK(std::abs(b["moved"].as_double() - 8.0 / 9) < 0.01);
  CHECK(std::abs(c["moved"].as_double() - 1.0 / 9) < 0.03);
  // 90 000 / 8 = 11 250 per range; the split moves the upper half of one: 5 625 records.
  CHECK(a["moved_records"].as_int() == 5625);
  const Value shards = range.call("shards", {});
  CHECK(total(shards, "records") == 90000);
  CHECK(shards.as_list()[8]["records"].as_int() == 5625);
  // The new shard took the open-ended top range: the next key is its.
  CHECK(range.call("shard_of", {{"key", 90000}}).as_int() == 8);
}

TEST_CASE("a slow shard delays every fanned-out scan but only its own range scans") {
  const auto r = run_experiment(
      traffic(200, milliseconds(5)), seconds(60),
      {{"sharding", "range", {{"scan_share", 0.3}}}, {"sharding", "hash", {{"scan_share", 0.3}}}},
      1, [](Experiment& e) {
        for (const auto& s : e.systems()) {
          SystemSlot* slot = s.get();
          e.at(seconds(10), [slot] {
            slot->inject("slow_shard", {{"shard", 0}, {"factor", 2.0}});
          });
        }
      });
  INFO("P99 range " << row(r, "range").p99 << " hash " << row(r, "hash").p99);
  CHECK(row(r, "hash").p99 > 2 * row(r, "range").p99);
  CHECK(row(r, "hash").completed == row(r, "hash").requests);
}

TEST_CASE("the sharding script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("sharding.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 6);
  REQUIRE(r.exit_code() == 0);
}

TEST_CASE("a shard that does not exist is refused") {
  Experiment e;
  SystemSlot& s = e.add(registry(), "sharding", "hash", {{"shards", 4}});
  REQUIRE_THROWS_WITH(s.inject("slow_shard", {{"shard", 9}}),
                      Catch::Contains("shard 9 does not exist"));
}
