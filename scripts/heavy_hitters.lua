-- Heavy hitters: "what is trending?" Every variant counts the same events (writes: a hashtag
-- used) and answers the same "top 10" queries (reads, 1%). Topic popularity follows Zipf(1.0)
-- over a million topics.
--
-- Part 1: 20 000 events/s for 5 s. The exact map keeps a 16-byte slot per topic ever seen
--         (about 50 000 of them, in 2^17 slots) and a query scans every slot; a count-min
--         sketch of 2719 x 5 counters (epsilon = e/w = 0.1%, delta = e^-5 = 0.7%) with a top-10
--         heap answers in a sort of 10 entries. Conservative update lowers the error. Then the
--         same events with narrower sketches: the top 10 against memory.
-- Part 2: the news moves on at 4 s: from then on every key names a new topic. With counts
--         decayed by a half-life of 250 ms, the true top 10 at 5 s are all new (an old topic
--         weighs 2^-4 of what a new one of the same rank does); the all-time counts still
--         show yesterday's: a new topic of rank r has 1389/r events against 556 for the old
--         rank 10, so only the new ranks 1 and 2 get in.
--
-- Theory: a count-min estimate is never below the count, and above it by at most (e/w) N with
-- probability at least 1 - e^-d per query (Markov per row, d independent rows): the share of
-- topics within the bound (`within_bound`) is at least 1 - delta on every seed. The top 10 of
-- Zipf(1) over 10^6 topics hold 24% of the events (N/H = 20 000/14.4 per second for the
-- first): with epsilon N = 100 events the sketch separates the 10th topic (139 events a
-- second) from the 11th (126) within a few seconds.
local lab = require "hldlab"

local function pct(x) return string.format("%.0f%%", 100 * x) end
local traffic = { arrivals = lab.poisson{ rps = 20000 }, keys = lab.zipf{ n = 1000000, s = 1.0 },
                  writes = 0.99 }

-- Part 1 ------------------------------------------------------------------------------------
local exp = lab.experiment{ name = "heavy_hitters: trending topics (all time)", seed = 42,
                            duration = "5s" }
exp:workload(traffic)
for _, v in ipairs{ "exact_counts", "count_min", "count_min_cu" } do
  exp:add{ lesson = "heavy_hitters", variant = v }
end
for _, w in ipairs{ 32, 128, 512 } do
  exp:add{ lesson = "heavy_hitters", variant = "count_min", label = "width " .. w,
           params = { width = w } }
end
local r = exp:run()
lab.report(r)
local exact, cms, cu = r.exact_counts, r.count_min, r.count_min_cu
for i = 2, 6 do
  lab.check(r[i].events == exact.events and r[i].topics == exact.topics,
            r[i].label .. ": the same events as the exact map")
  lab.check(r[i].completed == r[i].requests, r[i].label .. ": every request ends, exactly once")
end
lab.check(exact.topk_recall == 1 and exact.topk_precision == 1, "the exact map is exact")
lab.expect(cms.topk_recall >= 0.9 and exact.memory_bytes > 10 * cms.memory_bytes,
           string.format("count-min + heap finds %s of the top 10 in %d KiB; the exact map takes %d KiB "
                         .. "for %d topics", pct(cms.topk_recall), cms.memory_bytes // 1024,
                         exact.memory_bytes // 1024, exact.topics), { headline = true })
lab.expect(exact.query_p99 > 100 * cms.query_p99,
           string.format("a top-10 query scans every slot of the exact map (%.0f comparisons, P99 "
                         .. "%.0f us) but sorts 10 heap entries in the sketch (%.0f, %.2f us)",
                         exact.compares_per_query, exact.query_p99 * 1e6, cms.compares_per_query,
                         cms.query_p99 * 1e6))
for _, v in ipairs{ "count_min", "count_min_cu" } do
  lab.expect(r[v].within_bound >= 1 - r[v].delta,
             string.format("%s: %s of the topics within e/w N = %.0f of their count (bound: at least %s)",
                           v, pct(r[v].within_bound), r[v].error_bound, pct(1 - r[v].delta)))
end
lab.expect(cu.mean_overestimate < 0.7 * cms.mean_overestimate,
           string.format("conservative update cuts the mean overestimate from %.1f to %.1f",
                         cms.mean_overestimate, cu.mean_overestimate))
lab.expect(r["width 32"].topk_recall < cms.topk_recall,
           string.format("with 32 counters a row the top 10 is %s right; memory buys accuracy",
                         pct(r["width 32"].topk_recall)))

-- Part 2 ------------------------------------------------------------------------------------
local trend = lab.experiment{ name = "heavy_hitters: the news moves on at 4s (half-life 250ms)",
                              seed = 42, duration = "5s" }
trend:workload(traffic)
for _, v in ipairs{ "exact_counts", "count_min", "count_min_cu", "count_min_decayed" } do
  trend:add{ lesson = "heavy_hitters", variant = v, params = { half_life = "250ms" } }
end
trend:at("4s", function(sys) sys:call("shift_topics", {}) end)
local t = trend:run()
lab.report(t)
lab.check(t.exact_counts.topk_recall == 1, "the exact decayed counts are exact")
lab.expect(t.count_min_decayed.topk_recall >= 0.8 and t.count_min.topk_recall <= 0.5
           and t.count_min_cu.topk_recall <= 0.5,
           string.format("a second after the shift, decayed counts show %s of what is trending now; "
                         .. "all-time counts %s", pct(t.count_min_decayed.topk_recall),
                         pct(t.count_min.topk_recall)))
lab.expect(t.count_min_decayed.within_bound >= 1 - t.count_min_decayed.delta,
           "and the decayed sketch keeps its bound on the decayed counts")
