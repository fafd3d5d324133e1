-- Replaying a real-looking trace: one minute of a CDN edge (scripts/data/cdn_sample.csv: 6000
-- requests for 1704 objects, time in seconds, URL, bytes, method) through the caching lesson's
-- eviction policies, the same requests for each. Run it with the data directory allowed:
--   hldlab run scripts/cdn_trace.lua --data scripts/data
-- A trace is the traffic a deployment really sees: popularity, bursts, one-hit wonders and
-- uploads (the PUTs are writes) come from the file, not from a model.
local lab = require "hldlab"

local exp = lab.experiment{ name = "cdn trace: eviction policies on one minute of an edge", seed = 7, duration = "61s" }
exp:workload{
  arrivals = lab.trace{ file = "cdn_sample.csv", columns = { time = 1, key = 2, size = 3, op = 4 },
                        has_header = true },
}
for _, v in ipairs{ "none", "fifo", "lru", "lfu", "wtinylfu" } do
  exp:add{ lesson = "caching", variant = v, params = { capacity = 200 } }
end
local r = exp:run()
lab.report(r)
lab.check(r.none.requests == 6000 and r.lru.requests == 6000, "every request of the trace is replayed")
lab.check(r.none.db_reads + r.none.db_writes == 6000, "without a cache every request reaches the origin")
lab.expect(r.lru.hit_ratio > r.fifo.hit_ratio, string.format(
  "LRU keeps the edge's hot objects better than FIFO: hit ratio %.1f%% vs %.1f%%",
  100 * r.lru.hit_ratio, 100 * r.fifo.hit_ratio))
lab.expect(r.wtinylfu.hit_ratio > r.lru.hit_ratio, string.format(
  "W-TinyLFU's admission keeps one-hit wonders out: %.1f%% vs LRU's %.1f%%",
  100 * r.wtinylfu.hit_ratio, 100 * r.lru.hit_ratio), { headline = true })
