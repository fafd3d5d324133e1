#include <catch2/catch.hpp>
#include <cmath>

#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// Every prompt `prompt` tokens and every output `output` tokens (a lognormal with P99 equal
/// to its median is that constant), default cost model: decode 20 ms + 0.25 ms per sequence,
/// prefill 0.1 ms per token.
Map fixed_lengths(int prompt, int output, Map extra = {}) {
  Map p{{"prompt_median", prompt},
        {"prompt_p99", prompt},
        {"output_median", output},
        {"output_p99", output}};
  for (auto& [k, v] : extra) p[k] = v;
  return p;
}

/// `count` requests, `gap` apart.
ExperimentResult run(const std::vector<hldlab::testing::SystemSpec>& systems, int count, Time gap,
                     std::uint64_t seed = 1) {
  ExperimentConfig config;
  config.seed = seed;
  config.duration = gap * count + 1;  // arrivals at gap, 2 gap, ..., count x gap
  config.drain = seconds(3600);
  return run_experiment(constant_workload(1e9 / static_cast<double>(gap)), config, systems);
}

constexpr double kMs = 1e-3;

}  // namespace

TEST_CASE("a lone request: one prefill iteration, then one decode iteration per further token") {
  // Prompt 100, output 10. Continuous: iteration 1 = 20 + 0.25 + 100 x 0.1 = 30.25 ms gives the
  // first token; 9 decode iterations of 20.25 ms give the rest. Static: the batch waits
  // batch_wait = 200 ms for company, prefills 10 ms, then decodes the same 9 iterations.
  const auto r = run({{"llm_serving", "static_batching", fixed_lengths(100, 10)},
                      {"llm_serving", "continuous_batching", fixed_lengths(100, 10)},
                      {"llm_serving", "paged_kv", fixed_lengths(100, 10)}},
                     1, seconds(1));
  for (const char* v : {"static_batching", "continuous_batching", "paged_kv"}) {
    INFO(v);
    REQUIRE(row(r, v).completed == 1);
    CHECK(figure(r, v, "output_tokens") == 10);
    CHECK(figure(r, v, "prefill_tokens") == 100);
    CHECK(figure(r, v, "tpot_mean") == Approx(20.25 * kMs).epsilon(1e-9));
    CHECK(figure(r, v, "mean_batch") == Approx(1).epsilon(1e-12));
  }
  CHECK(figure(r, "continuous_batching", "ttft_mean") == Approx(30.25 * kMs).epsilon(1e-9));
  CHECK(figure(r, "paged_kv", "ttft_mean") == Approx(30.25 * kMs).epsilon(1e-9));
  CHECK(figure(r, "static_batching", "ttft_mean") == Approx(210 * kMs).epsilon(1e-9));
}

TEST_CASE("a contiguous reservation wastes what the sequence never fills; a block only its tail") {
  // Held tokens: 100 during the 30.25 ms prefill iteration, then 101..109 during the nine
  // 20.25 ms decode iterations: 3025 + 20.25 x 945 = 22161.25 token-ms. Reserved: 2048 tokens
  // (contiguous) or blocks_for(101) = 112 tokens (paged), for 212.5 ms.
  const auto r = run({{"llm_serving", "continuous_batching", fixed_lengths(100, 10)},
                      {"llm_serving", "paged_kv", fixed_lengths(100, 10)}},
                     1, seconds(1));
  const double held = 22161.25;
  CHECK(figure(r, "continuous_batching", "fragmentation") == Approx(1 - held / (2048 * 212.5)));
  CHECK(figure(r, "paged_kv", "fragmentation") == Approx(1 - held / (112 * 212.5)));
  // 12 GiB / 800 KiB = 15 728.64 tokens.
  CHECK(figure(r, "paged_kv", "kv_capacity_tokens") == 15728);
  CHECK(figure(r, "paged_kv", "kv_used") == Approx(held / 212.5 / 15728));
}

TEST_CASE("reserving the maximum length fits 7 sequences; blocks fit all 20") {
  // 20 requests 1 us apart, prompt 100, output 100. Reserving 2048 tokens each, 15 728 tokens
  // hold 7 sequences: 13 requests wait for memory (static batching: the 6 left behind when
  // the second full batch starts; the others waited for the running batch). Paged, a sequence
  // needs at most blocks_for(201) = 208 tokens: 75 fit, nobody waits, nobody is preempted.
  const auto r = run({{"llm_serving", "static_batching", fixed_lengths(100, 100)},
                      {"llm_serving", "continuous_batching", fixed_lengths(100, 100)},
                      {"llm_serving", "paged_kv", fixed_lengths(100, 100)}},
                     20, microseconds(1));
  for (const char* v : {"static_batching", "continuous_batching", "paged_kv"}) {
    INFO(v);
    CHECK(row(r, v).completed == 20);
    CHECK(figure(r, v, "output_tokens") == 2000);
    CHECK(figure(r, v, "prefill_tokens") == 2000);
  }
  CHECK(figure(r, "continuous_batching", "memory_waits") == 13);
  CHECK(figure(r, "static_batching", "memory_waits") == 6);
  CHECK(figure(r, "paged_kv", "memory_waits") == 0);
  CHECK(figure(r, "paged_kv", "preemptions") == 0);
  CHECK(figure(r, "continuous_batching", "mean_batch") <= 7);
  CHECK(figure(r, "paged_kv", "mean_batch") > 15);
  // Static: three batches (7, 7, 6), each prefilled then decoded 99 iterations; the first
  // starts when its 7th request arrives (7 us), the others right after the previous one:
  // 2 x (70 + 99 x 21.75) + (60 + 99 x 21.5) = 6635 ms; the last request arrived at 20 us.
  CHECK(row(r, "static_batching").max == Approx(6.635 - 13e-6).margin(1e-6));
}

TEST_CASE("a cached prefix is not prefilled again") {
  // One prefix of 100 tokens on every prompt (prompt 100 + 100), requests 1 s apart (each is
  // done in well under a second). Paged with a prefix cache: the first misses, 9 hit.
  const Map p = fixed_lengths(
      100, 10,
      {{"prefix_share", 1.0}, {"prefixes", 1}, {"prefix_tokens", 100}, {"max_prompt_tokens", 512}});
  const auto r = run({{"llm_serving", "paged_kv", p}, {"llm_serving", "continuous_batching", p}},
                     10, seconds(1));
  CHECK(figure(r, "paged_kv", "prefix_hit_rate") == Approx(0.9));
  CHECK(figure(r, "paged_kv", "prefill_tokens_saved") == 900);
  CHECK(figure(r, "paged_kv", "prefill_tokens") == 10 * 200 - 900);
  // Contiguous KV cannot share blocks: no prefix cache.
  CHECK(figure(r, "continuous_batching", "prefill_tokens_saved") == 0);
  CHECK(figure(r, "continuous_batching", "prefill_tokens") == 2000);
  // A hit's first iteration prefills 100 tokens instead of 200: 10 ms sooner.
  CHECK(figure(r, "continuous_batching", "ttft_mean") - figure(r, "paged_kv", "ttft_mean") ==
        Approx(0.9 * 10 * kMs));
}

TEST_CASE("round robin pays one cold prefill per replica; prefix-aware routing one in total") {
  const Map base = fixed_lengths(100, 10,
                                 {{"prefix_share", 1.0},
                                  {"prefixes", 1},
                                  {"prefix_tokens", 100},
                                  {"max_prompt_tokens", 512},
                                  {"replicas", 4}});
  Map rr = base, aware = base, least = base;
  rr["routing"] = "round_robin";
  aware["routing"] = "prefix_aware";
  least["routing"] = "least_tokens";
  const auto r = run({{"llm_serving", "paged_kv", rr, "rr"},
                      {"llm_serving", "paged_kv", aware, "aware"},
                      {"llm_serving", "paged_kv", least, "least"}},
                     20, seconds(1));
  CHECK(figure(r, "rr", "prefix_hit_rate") == Approx(16.0 / 20));
  CHECK(figure(r, "aware", "prefix_hit_rate") == Approx(19.0 / 20));
  // Idle replicas tie: least_tokens breaks ties round robin, so it spreads like round robin.
  CHECK(figure(r, "least", "prefix_hit_rate") == Approx(16.0 / 20));
  CHECK(figure(r, "aware", "replica_imbalance") == Approx(4));
  CHECK(figure(r, "rr", "replica_imbalance") == Approx(1));
}

TEST_CASE("paged KV preempts the newest sequence when blocks run out, and still answers all") {
  // 64 KV tokens, blocks of 16, sequences of 8 + 24 tokens: admission needs one block, the
  // growth to 32 tokens needs two. Sixteen requests at once overcommit the memory.
  const Map p = fixed_lengths(8, 24,
                              {{"kv_memory", 64.0},
                               {"kv_bytes_per_token", 1.0},
                               {"max_sequence_tokens", 48},
                               {"max_prompt_tokens", 16},
                               {"max_output_tokens", 32}});
  const auto r = run({{"llm_serving", "paged_kv", p}}, 16, microseconds(1));
  CHECK(row(r, "paged_kv").completed == 16);
  CHECK(figure(r, "paged_kv", "output_tokens") == 16 * 24);
  CHECK(figure(r, "paged_kv", "preemptions") > 0);
  CHECK(figure(r, "paged_kv", "recomputed_tokens") > 0);
  CHECK(figure(r, "paged_kv", "prefill_tokens") ==
        16 * 8 + figure(r, "paged_kv", "recomputed_tokens"));
  CHECK(figure(r, "paged_kv", "kv_reserved") <= 1.0);
}

TEST_CASE("an LRU prefix cache under round robin hits C/P of the time (theory, 10 seeds)") {
  // Uniform independent references: an LRU of C entries over P items holds C of them, each
  // next reference hits with probability C/P = 4/16. 2000 lookups: sd 0.01; the 16 cold misses
  // lower it by 0.8%. Outputs of one token keep the run short.
  const Map p = fixed_lengths(100, 1,
                              {{"prefix_share", 1.0},
                               {"prefixes", 16},
                               {"prefix_tokens", 100},
                               {"max_prompt_tokens", 512},
                               {"prefix_cache", 4}});
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const auto r = run({{"llm_serving", "paged_kv", p}}, 2000, milliseconds(100), seed);
    INFO("seed " << seed);
    CHECK(std::abs(figure(r, "paged_kv", "prefix_hit_rate") - 0.25) < 0.045);
  }
}

TEST_CASE("tokens per second grow from static to continuous batching to paged KV (10 seeds)") {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const Map p{{"max_waiting", 100000}};
    const auto r = run({{"llm_serving", "static_batching", p},
                        {"llm_serving", "continuous_batching", p},
                        {"llm_serving", "paged_kv", p}},
                       160, milliseconds(125), seed);
    INFO("seed " << seed);
    const double s = figure(r, "static_batching", "tokens_per_second");
    const double c = figure(r, "continuous_batching", "tokens_per_second");
    const double pg = figure(r, "paged_kv", "tokens_per_second");
    CHECK(c > 1.5 * s);
    CHECK(pg > 1.5 * c);
    CHECK(figure(r, "static_batching", "output_tokens") == figure(r, "paged_kv", "output_tokens"));
  }
}

TEST_CASE("a replica rejects requests beyond max_waiting") {
  // 20 requests 1 us apart: the first starts its iteration alone at once, the next 5 wait
  // (max_waiting 5), the other 14 are rejected.
  const auto r =
      run({{"llm_serving", "continuous_batching", fixed_lengths(100, 100, {{"max_waiting", 5}})}},
          20, microseconds(1));
  CHECK(row(r, "continuous_batching").count(Outcome::rejected) == 14);
  CHECK(row(r, "continuous_batching").completed == 20);
  CHECK(figure(r, "continuous_batching", "output_tokens") == 600);
}

TEST_CASE("settings that cannot hold one sequence are refused") {
  CHECK_THROWS(
      run({{"llm_serving", "paged_kv", {{"kv_memory", 1024.0 * 800 * 1024}}}}, 1, seconds(1)));
  CHECK_THROWS(run({{"llm_serving", "paged_kv", {{"max_sequence_tokens", 1000}}}}, 1, seconds(1)));
}
