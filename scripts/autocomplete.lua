-- Autocomplete: the 10 most searched terms starting with what the user typed. A dictionary of
-- 20 000 terms (2 to 4 syllables, drawn from the seed) with Zipf(1) search counts; requests
-- pick a term by the same popularity: a read types its first 1..length characters (drawn per
-- request), a write is a completed search of it (count + 1). The same requests for every
-- variant. Cost model: 50 ns per trie node or list row visited, 5 ns per comparison, 1 us per
-- request, 4 workers.
--
-- Part 1  prefix scan vs trie vs trie with top-k per node (updated live, or rebuilt every
--         second); from 0.5 s the term of rank 10 000 trends: a tenth of all requests
-- Part 2  the same traffic over a dictionary 10 times smaller: what grows with it
--
-- Theory: the scan reads every term matching the prefix (and one more to see the range end):
-- O(log n + matches), matches growing in proportion to the dictionary; the cached trie visits
-- exactly the typed characters, whatever the dictionary (both exact in the tests). Live lists
-- stay exact while counts only grow (a term enters a list only by beating its last entry):
-- stale answers are 0 by construction, not by chance; the batch lists can only be stale.
local lab = require "hldlab"

local variants = { "prefix_scan", "trie", "trie_topk", "trie_topk_batch" }
local exp = lab.experiment{ name = "autocomplete: 20 000 terms, 5000 requests/s, 30% searches counted",
                            seed = 42, duration = "2s" }
exp:workload{ arrivals = lab.poisson{ rps = 5000 }, keys = lab.zipf{ n = 20000, s = 1.0 }, writes = 0.3 }
local trending
for _, v in ipairs(variants) do
  local sys = exp:add{ lesson = "autocomplete", variant = v, params = { rebuild_period = "1s" } }
  trending = trending or sys:call("term", { rank = 10000 })
end
exp:at("500ms", function(sys) sys:inject("trend", { rank = 10000, share = 0.1 }) end)
local r = exp:run()
lab.report(r)
print(string.format("trending from 0.5 s: '%s' (rank 10 000, %d searches before)\n", trending.term,
                    trending.count))

local scan, walk, live, batch = r.prefix_scan, r.trie, r.trie_topk, r.trie_topk_batch
lab.expect(live.nodes_per_query < 8 and scan.nodes_per_query > 20 * live.nodes_per_query
           and scan.p99 > 10 * live.p99,
           string.format("the prefix scan reads %.0f terms per query, the cached trie visits the %.1f "
                         .. "typed characters: P99 %.1f us -> %.2f us", scan.nodes_per_query,
                         live.nodes_per_query, scan.p99 * 1e6, live.p99 * 1e6), { headline = true })
lab.expect(walk.nodes_per_query > scan.nodes_per_query,
           string.format("a trie without the cache is no better: it walks the prefix's subtree (%.0f nodes)",
                         walk.nodes_per_query))
lab.expect(live.bytes_per_term > 5 * scan.bytes_per_term,
           string.format("the price: %.0f bytes per term against %.0f (10 term ids in every node)",
                         live.bytes_per_term, scan.bytes_per_term))
lab.expect(live.nodes_per_update > 4 and batch.nodes_per_update == 1,
           string.format("and updates: a search moves its term up the lists of its %.1f nodes "
                         .. "(the batch variant only bumps a count)", live.nodes_per_update))
lab.expect(live.stale_share == 0 and live.trend_stale == 0,
           "lists updated in place are never stale: the trending term climbs them at once")
-- The trending term's own share of stale answers depends on the terms around it (0 to 53 % on
-- seeds 1-300, 0 on seed 299), so it is shown, not asserted.
lab.expect(batch.stale_share > 0,
           string.format("lists rebuilt every second lag: %.1f%% of all answers stale, %.0f%% of those "
                         .. "typing the trending term", 100 * batch.stale_share, 100 * batch.trend_stale))
for _, v in ipairs(variants) do
  lab.check(r[v].completed == r[v].requests and r[v].queries + r[v].updates == r[v].requests,
            v .. ": every request ends exactly once")
end
lab.check(scan.stale_share == 0 and walk.stale_share == 0, "the exact structures are exact")

-- Part 2 ------------------------------------------------------------------------------------
-- The first 2000 terms of the big dictionary are the small one (the same stream), and the
-- traffic only asks for them: the same prefixes typed, against 10x the terms.
exp = lab.experiment{ name = "autocomplete: the same queries against 2000 and 20 000 terms",
                      seed = 42, duration = "1s" }
exp:workload{ arrivals = lab.poisson{ rps = 2000 }, keys = lab.zipf{ n = 2000, s = 1.0 } }
for _, n in ipairs{ 2000, 20000 } do
  for _, v in ipairs{ "prefix_scan", "trie_topk" } do
    exp:add{ lesson = "autocomplete", variant = v, label = v .. " " .. n, params = { terms = n } }
  end
end
r = exp:run()
lab.report(r)
local grow = r["prefix_scan 20000"].nodes_per_query / r["prefix_scan 2000"].nodes_per_query
lab.expect(grow > 5 and r["trie_topk 20000"].nodes_per_query == r["trie_topk 2000"].nodes_per_query,
           string.format("10x the terms: the scan reads %.1fx the rows, the cached trie the same %.2f nodes",
                         grow, r["trie_topk 2000"].nodes_per_query))
