#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "chunking.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

const char* const kVariants[] = {"whole_file", "fixed_blocks", "cdc"};

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint8_t> out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng.next());
  return out;
}

std::set<std::uint64_t> hashes(const std::vector<file_sync::Chunk>& chunks) {
  std::set<std::uint64_t> out;
  for (const auto& c : chunks) out.insert(c.hash);
  return out;
}

/// Chunks of `after` whose content `before` does not have.
std::size_t new_chunks(const std::vector<file_sync::Chunk>& before,
                       const std::vector<file_sync::Chunk>& after) {
  const auto known = hashes(before);
  std::size_t n = 0;
  for (const auto& c : after) n += known.count(c.hash) == 0;
  return n;
}

}  // namespace

TEST_CASE("content-defined chunks cover the bytes exactly, between the minimum and the maximum") {
  const auto data = random_bytes(1 << 20, 7);
  const file_sync::GearChunker chunker(4096);
  file_sync::Work work;
  const auto chunks = chunker.chunks(data, work);
  std::size_t at = 0;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    CHECK(chunks[i].offset == at);
    if (i + 1 < chunks.size()) CHECK(chunks[i].length > 1024);  // min = target / 4
    CHECK(chunks[i].length <= 8 * 4096);
    at += chunks[i].length;
  }
  CHECK(at == data.size());
  CHECK(work.hashed == data.size());  // every byte hashed once by its chunk's hash
  CHECK(work.rolled < data.size());   // the rolling hash skips most of the minimum
  CHECK(work.rolled > data.size() * 3 / 4 - 1);
}

TEST_CASE("the mean chunk size agrees with the target within 5% on 16 MiB of random bytes") {
  // A chunk is min + a wait of mean ~(target - min) bytes: standard deviation ~ target - min,
  // over 16 MiB / target chunks: 3072 / 64 = 1.2 % for target 4096, 2.3 % for 16384. The Gear
  // hash's cut events cluster a little (consecutive hashes share bits), so the wait is a few
  // percent above 1 / p: the tolerance is 5 %.
  for (std::size_t target : {1024, 4096, 16384}) {
    const auto data = random_bytes(16 << 20, target);
    file_sync::Work work;
    const auto chunks = file_sync::GearChunker(target).chunks(data, work);
    const double mean = static_cast<double>(data.size()) / static_cast<double>(chunks.size());
    INFO("target " << target << ": " << chunks.size() << " chunks");
    CHECK(mean == Approx(static_cast<double>(target)).epsilon(0.05));
  }
}

TEST_CASE("an insertion changes one or two content-defined chunks, every later fixed block") {
  // 200 one-byte insertions at random offsets of 256 KiB: each chunking compared with the
  // original's. The fixed blocks after the insertion all shift: exactly
  // ceil((S + 1) / B) - floor(offset / B) new blocks.
  const std::size_t size = 256 * 1024, block = 4096;
  const auto original = random_bytes(size, 11);
  const file_sync::GearChunker chunker(4096);
  file_sync::Work work;
  const auto cdc_before = chunker.chunks(original, work);
  const auto fixed_before = file_sync::fixed_blocks(original, block, work);
  Rng rng(3);
  std::size_t total = 0, worst = 0;
  for (int trial = 0; trial < 200; ++trial) {
    auto edited = original;
    const std::size_t at = rng.below(size + 1);
    edited.insert(edited.begin() + static_cast<std::ptrdiff_t>(at),
                  static_cast<std::uint8_t>(rng.next()));
    const std::size_t changed = new_chunks(cdc_before, chunker.chunks(edited, work));
    total += changed;
    worst = std::max(worst, changed);
    CHECK(new_chunks(fixed_before, file_sync::fixed_blocks(edited, block, work)) ==
          (size + 1 + block - 1) / block - at / block);
  }
  CHECK(total >= 200);  // the chunk holding the new byte is always new
  CHECK(static_cast<double>(total) / 200 < 1.2);
  CHECK(worst <= 3);
}

TEST_CASE("an overwrite inside one fixed block changes exactly that block") {
  const auto original = random_bytes(64 * 1024, 5);
  file_sync::Work work;
  const auto before = file_sync::fixed_blocks(original, 4096, work);
  auto edited = original;
  for (std::size_t i = 5000; i < 5064; ++i) edited[i] ^= 0xFF;  // inside block 1 (4096..8191)
  const auto after = file_sync::fixed_blocks(edited, 4096, work);
  CHECK(new_chunks(before, after) == 1);
  CHECK(after[1].hash != before[1].hash);
}

TEST_CASE(
    "before any edit the store holds each of the users' identical files once: dedup ratio = "
    "users") {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : kVariants) systems.push_back({"file_sync", v, {{"users", 5}}});
  // A workload whose first request would come after 10^6 s: no sync at all.
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(1e-6),
                                                 seconds(1), systems);
  for (const char* v : kVariants) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "stored_bytes") == 8 * 131072);
    CHECK(figure(s, "logical_bytes") == 5 * 8 * 131072);
    CHECK(figure(s, "dedup_ratio") == 5);
    CHECK(figure(s, "syncs") == 0);
  }
}

TEST_CASE(
    "whole_file sends and stores every synced version whole; fixed blocks and CDC send only what "
    "the store lacks") {
  const auto r = hldlab::testing::run_experiment(
      hldlab::testing::poisson_workload(40, 0, 32), seconds(3),
      {{"file_sync", "whole_file"}, {"file_sync", "fixed_blocks"}, {"file_sync", "cdc"}});
  const auto& whole = row(r, "whole_file");
  const double initial = 4.0 * 8 * 131072;
  const double versions = figure(whole, "logical_bytes") - initial;  // bytes of synced versions
  CHECK(figure(whole, "bytes_sent") == versions);
  CHECK(figure(whole, "stored_bytes") == 8 * 131072 + versions);
  CHECK(figure(whole, "chunks_per_sync") == 1);
  CHECK(figure(whole, "manifest_bytes") == 0);
  for (const char* v : {"fixed_blocks", "cdc"}) {
    const auto& s = row(r, v);
    INFO(v);
    CHECK(figure(s, "logical_bytes") == figure(whole, "logical_bytes"));  // the same edits
    CHECK(figure(s, "stored_bytes") == 8 * 131072 + figure(s, "bytes_sent"));
    CHECK(figure(s, "bytes_sent") < figure(whole, "bytes_sent"));
  }
  CHECK(figure(row(r, "cdc"), "bytes_sent") < figure(row(r, "fixed_blocks"), "bytes_sent"));
}

TEST_CASE("after a warm-up the sync figures restart but the store is kept") {
  const auto r = hldlab::testing::run_experiment(hldlab::testing::constant_workload(10, 0, 32),
                                                 {.duration = seconds(2), .warmup = seconds(1)},
                                                 {{"file_sync", "cdc", {}}});
  const auto& s = row(r, "cdc");
  CHECK(s.requests == 10);
  CHECK(figure(s, "syncs") == 10);
  CHECK(figure(s, "logical_bytes") > (32 + 19) * 131072 - 19 * 64);  // 19 syncs in all
}

TEST_CASE("the script's claims hold") {
  const ScriptResult r = hldlab::testing::run_script_file("file_sync.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 4);
  REQUIRE(r.exit_code() == 0);
}
