-- Semantic caching of LLM answers: exact match -> embedding similarity with a threshold, and
-- the false hits it brings. 100 requests/s for 20 s over 1000 questions (Zipf 1.0), each asked
-- in one of 32 wordings (drawn per request: the same for every system); the LLM answers a miss
-- in a lognormal time (median 1 s, P99 4 s) for $0.01; an embedding costs 5 ms and $0.00002.
-- Embeddings are real 64-dimensional unit vectors: two wordings of one question have cosine
-- ~0.9; questions come in families of 4 near questions — short ones differ by a word (cosine
-- ~0.83 between their wordings), long ones less (~0.54); unrelated questions ~0 +- 0.125.
--
-- Part 1: exact match only hits a wording seen before. A semantic cache at threshold 0.8 hits
--         most paraphrases, but a short sibling question's entry (~0.83) passes the threshold
--         too: a false hit serves another question's answer. The fixes: a tighter threshold
--         (0.9) for short prompts only, or verifying each candidate (30 ms, $0.0005, wrong 2%
--         of the time).
-- Part 2: the threshold sweep (one system per threshold, the same traffic): hit rate and
--         false-hit rate both fall as the threshold rises; at 0.95 only identical wordings
--         are similar enough and the semantic cache is an exact one. No single threshold
--         reaches the length-aware cache's hit rate without more false hits.
--
-- Theory for the margins: short siblings sit at tau x rho = 0.83 +- 0.05, so at 0.8 about
-- 70% of comparisons with a cached sibling pass; at 0.9 under 10%; long siblings (0.54 +-
-- 0.07) never reach 0.8. 2000 requests, 30% of them short: false hits are counted in tens,
-- and the claims keep factors of 3 or more between them.
local lab = require "hldlab"

local traffic = {
  arrivals = lab.poisson{ rps = 100 },
  keys = lab.zipf{ n = 1000, s = 1.0 },
  service = lab.lognormal{ median = "1s", p99 = "4s" },
}
local exp = lab.experiment{ name = "semantic_cache: exact match vs embeddings", seed = 42, duration = "20s" }
exp:workload(traffic)
local variants = { "exact_match", "semantic", "semantic_length_aware", "semantic_verified" }
for _, v in ipairs(variants) do exp:add{ lesson = "semantic_cache", variant = v } end
local thresholds = { 0.7, 0.75, 0.85, 0.9, 0.95 }
for _, t in ipairs(thresholds) do
  exp:add{ lesson = "semantic_cache", variant = "semantic", label = string.format("threshold_%.2f", t),
           params = { threshold = t } }
end
local r = exp:run()
lab.report(r)

local exact, sem, short, verified = r.exact_match, r.semantic, r.semantic_length_aware, r.semantic_verified
for _, v in ipairs(variants) do
  lab.check(r[v].hits + r[v].llm_calls == r[v].requests, "every request is a hit or an LLM call")
end
local function pct(x) return string.format("%.1f%%", 100 * x) end

print("\nthreshold  hit rate  false-hit rate  wrong answers  net saving")
local curve = {}
for _, t in ipairs{ 0.7, 0.75, 0.8, 0.85, 0.9, 0.95 } do
  local s = t == 0.8 and sem or r[string.format("threshold_%.2f", t)]
  curve[#curve + 1] = s
  print(string.format("%9.2f  %8s  %14s  %13s  %9.2f $", t, pct(s.hit_rate), pct(s.false_hit_rate),
                      pct(s.wrong_answers), s.net_saving))
end

lab.expect(sem.hit_rate > 2 * exact.hit_rate,
           "a semantic cache hits " .. pct(sem.hit_rate) .. " of the requests, exact match " .. pct(exact.hit_rate),
           { headline = true })
lab.expect(sem.net_saving > 2 * exact.net_saving,
           string.format("and saves $%.2f of LLM calls net of embeddings (exact match $%.2f)",
                         sem.net_saving, exact.net_saving))
lab.expect(sem.false_hit_rate > 0.02 and sem.short_false_hits > 0.9 * sem.false_hits,
           "threshold 0.8: " .. pct(sem.false_hit_rate) .. " of the cache answers belong to another question,"
           .. " nearly all short prompts")
lab.expect(short.false_hit_rate < sem.false_hit_rate / 3 and short.hit_rate > curve[5].hit_rate,
           "a tighter threshold for short prompts: " .. pct(short.false_hit_rate) .. " false hits, "
           .. pct(short.hit_rate) .. " hits (one threshold of 0.9 for all: " .. pct(curve[5].hit_rate) .. ")")
lab.expect(verified.false_hit_rate < sem.false_hit_rate / 5 and verified.hit_rate > 0.9 * sem.hit_rate,
           "verifying candidates: " .. pct(verified.false_hit_rate) .. " false hits for "
           .. pct(verified.hit_rate) .. " hits, paying $" .. string.format("%.2f", verified.verification_cost))
lab.expect(sem.p50 < 0.1 and exact.p50 > 0.5, "the median answer comes from the cache (semantic) or the LLM (exact)")
lab.expect(curve[1].hit_rate > curve[3].hit_rate and curve[3].hit_rate > curve[6].hit_rate
           and curve[1].false_hit_rate > curve[4].false_hit_rate and curve[6].false_hits == 0,
           "the sweep: a higher threshold gives fewer hits and fewer false hits")
