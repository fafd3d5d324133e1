-- Caching: eviction policies and read/write strategies in front of a finite database.
--
-- Part 1: 4700 reads/s, Zipf(1.0) over 100k keys, a database that serves ~4900 queries/s
--         (16 workers, lognormal 2 ms median, 20 ms P99). Without a cache it runs at ~95% and
--         queues; a 1% cache takes most of the load off it. At 15 s a batch job starts scanning
--         cold keys (30% of requests): LRU and FIFO let the scan flush the hot set, W-TinyLFU's
--         frequency admission keeps it.
-- Part 1b: popularity shifts at 10 s: LFU is stuck on old counts, W-TinyLFU ages and follows.
-- Part 2: the four strategies on an LRU cache with 20% writes; the cache crashes at 10.5 s.
--         Write-back loses the writes acknowledged since the last flush; cache-aside leaves
--         stale values behind after the read/write race; write-through does neither.
local lab = require "hldlab"

local policies = lab.experiment{ name = "caching: eviction policies", seed = 42, duration = "30s" }
policies:workload{
  arrivals = lab.poisson{ rps = 4700 },
  keys = lab.zipf{ n = 100000, s = 1.0 },
}
for _, v in ipairs{ "none", "fifo", "lru", "lfu", "ttl", "wtinylfu" } do
  policies:add{ lesson = "caching", variant = v, params = { capacity = 1000, ttl = "2s" } }
end
policies:at("15s", function(sys) sys:inject("scan", { share = 0.3, length = 1000000 }) end)
local p = policies:run()
lab.report(p)
lab.check(p.none.db_qps > 4000, "without a cache every read is a database query")
for _, v in ipairs{ "fifo", "lru", "lfu", "ttl", "wtinylfu" } do
  lab.expect(p[v].db_qps < 0.7 * p.none.db_qps, v .. " takes at least 30% of the load off the database")
end
lab.expect(p.lru.p99 < p.none.p99, "and the P99 drops with the database's queue")
lab.expect(p.lru.hit_ratio > p.fifo.hit_ratio, "LRU keeps hot keys better than FIFO")
lab.expect(p.wtinylfu.hit_ratio > p.lru.hit_ratio + 0.06,
           "W-TinyLFU beats LRU by more than 6 points (Zipf, then the scan)",
           { headline = true })
lab.expect(p.ttl.hit_ratio < p.lru.hit_ratio, "a TTL costs hit ratio: hot keys are reloaded too")

-- Part 1b: on static Zipf LFU does as well as W-TinyLFU. At 10 s popularity moves (every key
--          k is read as k + 1000000): LFU keeps yesterday's hot keys on their old counts,
--          W-TinyLFU's sketch ages (halved every 10 x capacity accesses) and follows.
local shift = lab.experiment{ name = "caching: popularity shift at 10s", seed = 42, duration = "30s" }
shift:workload{ arrivals = lab.poisson{ rps = 4700 }, keys = lab.zipf{ n = 100000, s = 1.0 } }
for _, v in ipairs{ "lru", "lfu", "wtinylfu" } do
  shift:add{ lesson = "caching", variant = v, params = { capacity = 1000 } }
end
shift:at("10s", function(sys) sys:inject("shift", { offset = 1000000 }) end)
local sh = shift:run()
lab.report(sh)
lab.expect(sh.wtinylfu.hit_ratio > sh.lfu.hit_ratio + 0.05,
           "W-TinyLFU follows the shift, LFU lags (by more than 5 points)")

local strategies = lab.experiment{ name = "caching: strategies, crash at 10.5s", seed = 42, duration = "20s" }
strategies:workload{
  arrivals = lab.poisson{ rps = 3000 },
  keys = lab.zipf{ n = 10000, s = 1.0 },
  writes = 0.2,
}
for _, s in ipairs{ "cache_aside", "read_through", "write_through", "write_back" } do
  strategies:add{ lesson = "caching", variant = "lru", label = s,
                  params = { capacity = 2000, strategy = s, flush_interval = "2s" } }
end
strategies:at("10.5s", function(sys) sys:inject("crash", {}) end)
local s = strategies:run()
lab.report(s)
lab.expect(s.write_back.writes_lost > 0, "write-back loses the writes acknowledged since the last flush")
lab.expect(s.write_through.writes_lost == 0 and s.cache_aside.writes_lost == 0,
           "write-through and cache-aside lose none")
lab.expect(s.write_back.db_writes < s.write_through.db_writes / 2,
           "write-back coalesces writes: less than half the database writes")
lab.expect(s.cache_aside.stale_reads > 0, "cache-aside serves stale values after the fill/invalidate race")
lab.expect(s.write_through.stale_reads == 0, "write-through never does")
lab.expect(s.read_through.db_reads < s.cache_aside.db_reads,
           "read-through shares one load among concurrent misses")

-- Part 3: miss-ratio curves. Every policy on the same traffic (one experiment per cache size
--         and seed), 5 seeds per size, each hit ratio a mean with its 95% confidence interval.
--         The claims are stated over the seeds: the per-seed difference LRU - FIFO (the same
--         requests for both: a paired comparison) is above 0 with 95% confidence at every size.
local curve_policies = { "fifo", "lru", "lfu", "wtinylfu" }
local curves = lab.sweep{
  name = "caching: hit ratio by cache size (Zipf 1.0, 20k keys)",
  seeds = 5,
  params = { capacity = { 50, 200, 800, 3200 } },
  run = function(point, seed)
    local e = lab.experiment{ name = "curve", seed = seed, duration = "4s" }
    e:workload{ arrivals = lab.poisson{ rps = 3000 }, keys = lab.zipf{ n = 20000, s = 1.0 } }
    for _, v in ipairs(curve_policies) do
      e:add{ lesson = "caching", variant = v, params = { capacity = point.capacity } }
    end
    local r = e:run()
    local hit = {}
    for _, v in ipairs(curve_policies) do hit[v] = r[v].hit_ratio end
    return { hit = hit, lru_minus_fifo = r.lru.hit_ratio - r.fifo.hit_ratio }
  end,
}
lab.report(curves)
local rising, above = true, true
for i, point in ipairs(curves.points) do
  above = above and point.lru_minus_fifo.lo > 0
  if i > 1 then
    for _, v in ipairs(curve_policies) do
      rising = rising and point["hit." .. v].mean > curves.points[i - 1]["hit." .. v].mean
    end
  end
end
lab.expect(rising, "every policy's mean hit ratio rises with the cache size")
lab.expect(above, "LRU beats FIFO at every size, with 95% confidence over the seeds")
