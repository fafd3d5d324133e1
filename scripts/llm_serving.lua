-- LLM serving: static batching -> continuous batching -> paged KV cache, then routing over
-- replicas. Every variant serves the same requests with the same prompt and output lengths
-- (drawn per request from the seed): prompts lognormal (median 256, P99 1024 tokens, mean
-- ~306), outputs lognormal (median 128, P99 768, mean ~172). Cost model (defaults): a decode
-- iteration costs 20 ms + 0.25 ms per sequence in the batch, prefill 0.1 ms per prompt token;
-- 12 GiB of KV memory at 800 KiB per token (a 13B model in fp16) holds 15 728 tokens.
--
-- Part 1: one replica, 8 requests/s for 30 s: more than any variant serves, so each one runs
--         at its capacity (drain until every request is answered).
--   Theory. Reserving max_sequence_tokens = 2048 per sequence, 15 728 tokens hold 7
--   sequences. Static batching decodes a batch of 7 until its longest output ends (E[max of 7]
--   ~ 400 tokens, 21.75 ms per iteration) and prefills it padded to its longest prompt: ~9.2 s
--   for 7 x 172 tokens, about 130 tokens/s. Continuous batching keeps 7 sequences running and
--   wastes no padding: 7 tokens per 21.75 ms minus the prefills, about 300 tokens/s (2.3x).
--   Paging the KV cache holds sequences at their real length (~300 + the tokens generated, not
--   2048): ~28 sequences per iteration, about 3 to 4x the tokens of an iteration of 7 for
--   ~1.3x its time, minus the recomputation of preempted sequences. Contiguous reservations
--   waste 1 - E[held] / 2048 ~ 80% of the memory they hold; blocks of 16 tokens waste about
--   8.5 tokens per sequence (~2.5%).
--   Published: Orca serves up to 36.9x the throughput of FasterTransformer (static batches) at
--   the same latency (GPT-3 175B, OSDI 2022); vLLM 2-4x the throughput of Orca and
--   FasterTransformer at the same latency, and measures 20.4-38.2% of the KV memory holding
--   tokens in those systems against 96.3% with PagedAttention (SOSP 2023).
-- Part 2: 4 paged replicas, 10 requests/s; 80% of the prompts start with one of 16 shared
--         prefixes of 512 tokens (system prompts, documents); each replica caches 4 prefixes
--         (LRU). Round robin sends every prefix everywhere: with uniform independent
--         references an LRU of C entries over P items hits C/P = 25% (a little less here: the
--         first use of a prefix on each replica misses). Prefix-aware routing sends a prefix
--         to the replica that served it last (a new one to the least loaded replica), so each
--         replica sees ~4 prefixes and nearly always holds
--         them: the prefill of 512 tokens is saved on most requests, and the time to first
--         token drops.
local lab = require "hldlab"

local traffic = { arrivals = lab.poisson{ rps = 8 }, keys = lab.uniform{ n = 1000 }, service = "1ms" }

local exp = lab.experiment{ name = "llm_serving: batching and KV memory", seed = 42,
                            duration = "30s", drain = "1800s" }
exp:workload(traffic)
for _, v in ipairs{ "static_batching", "continuous_batching", "paged_kv" } do
  exp:add{ lesson = "llm_serving", variant = v, params = { max_waiting = 100000 } }
end
local r = exp:run()
lab.report(r)
local static, continuous, paged = r.static_batching, r.continuous_batching, r.paged_kv
for _, s in ipairs{ static, continuous, paged } do
  lab.check(s.completed == s.requests and s.unfinished == 0, "every request is answered")
  lab.check(s.output_tokens == static.output_tokens, "every variant generates the same tokens")
end
local function x(a, b) return string.format("%.1fx", a / b) end
lab.expect(paged.tokens_per_second > 4 * static.tokens_per_second,
           "paged KV cache: " .. x(paged.tokens_per_second, static.tokens_per_second)
           .. " the tokens/s of static batching", { headline = true })
lab.expect(continuous.tokens_per_second > 1.6 * static.tokens_per_second,
           "continuous batching: " .. x(continuous.tokens_per_second, static.tokens_per_second)
           .. " the tokens/s of static batching (no padding, no waiting for the longest)")
lab.expect(paged.tokens_per_second > 1.8 * continuous.tokens_per_second,
           "paging the KV cache: " .. x(paged.tokens_per_second, continuous.tokens_per_second)
           .. " the tokens/s of contiguous reservations")
lab.expect(paged.mean_batch > 3 * continuous.mean_batch,
           string.format("paged blocks fit %.1f sequences per iteration, reservations %.1f",
                         paged.mean_batch, continuous.mean_batch))
lab.expect(static.fragmentation > 0.6 and continuous.fragmentation > 0.6 and paged.fragmentation < 0.05,
           string.format("reserved for 2048 tokens, %.0f%% of the allocated KV memory holds nothing; "
                         .. "in blocks of 16, %.1f%%", 100 * continuous.fragmentation, 100 * paged.fragmentation))
lab.expect(paged.ttft_p50 < continuous.ttft_p50 and continuous.ttft_p50 < static.ttft_p50,
           "time to first token (P50): paged < continuous < static")
lab.expect(static.tpot_mean > 2 * continuous.tpot_mean,
           "static batching: a short answer waits for the batch's longest (time per output token "
           .. x(static.tpot_mean, continuous.tpot_mean) .. ")")
lab.expect(paged.preemptions > 0 and continuous.preemptions == 0,
           "paged KV overcommits: when blocks run out the newest sequence is preempted and recomputed")

local routing = lab.experiment{ name = "llm_serving: routing over 4 replicas", seed = 42,
                                duration = "30s", drain = "1800s" }
routing:workload{ arrivals = lab.poisson{ rps = 10 }, keys = lab.uniform{ n = 1000 }, service = "1ms" }
for _, policy in ipairs{ "round_robin", "least_tokens", "prefix_aware" } do
  routing:add{ lesson = "llm_serving", variant = "paged_kv", label = policy,
               params = { replicas = 4, routing = policy, prefix_share = 0.8, prefixes = 16,
                          prefix_tokens = 512, prefix_cache = 4, max_prompt_tokens = 512 } }
end
local p = routing:run()
lab.report(p)
for _, s in ipairs{ p.round_robin, p.least_tokens, p.prefix_aware } do
  lab.check(s.completed == s.requests and s.unfinished == 0, "every request is answered")
end
-- ~240 lookups: the LRU hit rate of round robin is 0.25 x (1 - cold misses) = 0.236 on average,
-- with sd ~0.03 over 1 100 seeds; the claim allows 5 sd (0.12-0.32 broke on 2 seeds of 100).
lab.expect(p.round_robin.prefix_hit_rate > 0.07 and p.round_robin.prefix_hit_rate < 0.40,
           string.format("round robin: prefix hit rate %.0f%% (LRU theory: 4 cached / 16 prefixes = 25%%)",
                         100 * p.round_robin.prefix_hit_rate))
lab.expect(p.prefix_aware.prefix_hit_rate > 2 * p.round_robin.prefix_hit_rate,
           string.format("prefix-aware routing: prefix hit rate %.0f%% vs %.0f%% for round robin",
                         100 * p.prefix_aware.prefix_hit_rate, 100 * p.round_robin.prefix_hit_rate))
lab.expect(p.prefix_aware.prefill_tokens_saved > 2 * p.round_robin.prefill_tokens_saved
           and p.prefix_aware.prefill_tokens < p.round_robin.prefill_tokens,
           string.format("prefix-aware routing saves %d prefill tokens, round robin %d",
                         p.prefix_aware.prefill_tokens_saved, p.round_robin.prefill_tokens_saved))
lab.expect(p.prefix_aware.ttft_p50 < p.round_robin.ttft_p50,
           "and the skipped prefills shorten the time to first token (P50)")
