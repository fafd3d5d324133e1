-- CDN: a far origin, edge caches near the users, a shield, invalidation and stale serving.
--
-- Users in three regions, 20 / 150 / 250 ms from the origin and 5 / 10 / 20 ms from their edge;
-- the origin takes 20 ms per object.
-- Part 1: Zipf traffic (10 000 objects, s = 1), max-age 60 s. Without edges every request pays
--         the origin round trip; with edges the median is the edge round trip, per region.
--         A shield in front of the origin lets one fetch serve all three edges.
-- Part 2: hit ratio against max-age, uniform popularity (1000 objects, 1 request/s per object
--         and edge), measured for 20 s after a 10 s warm-up (the formula is the steady state). A copy fetched by a miss lands F later (the fetch) and stays fresh max-age
--         T; every request of those T + F seconds is a hit, so a renewal cycle has one miss and
--         on average lambda (T + F) hits: hit ratio = lambda (T + F) / (1 + lambda (T + F)),
--         per region (F = origin round trip + 20 ms). About 28 000 misses among 60 000
--         requests at T = 1 s: the standard deviation of the ratio is about 0.002 (misses of one
--         object and edge form a renewal process: variance D Var(cycle) / E(cycle)^3); the
--         claims allow 0.01.
-- Part 3: 0.1 % of requests update their object (max-age 60 s). With TTL only, edges serve
--         the old version until it expires; a purge removes it after 0.5 s (the hottest object
--         changes every 2.5 s, so even then it is often stale); versioned URLs never serve an
--         old version.
-- Part 4: 100 hot objects, max-age 2 s: without stale-while-revalidate one request per expiry
--         and edge waits for the origin (1 / (1 + 10/s x 2.27 s) = 4 % in the far region, so its
--         P99 is an origin fetch); with it, none does once the copies are there (a 5 s warm-up
--         leaves out the first fetches).
-- Part 5: the origin is down from 5 s to 10 s. Without stale-if-error every expired copy
--         becomes an error; with it, the edges answer their expired copies.
local lab = require "hldlab"

-- Part 1: regions.
local exp = lab.experiment{ name = "cdn: regions", seed = 42, duration = "20s" }
exp:workload{ arrivals = lab.poisson{ rps = 3000 }, keys = lab.zipf{ n = 10000, s = 1.0 }, clients = 3000 }
for _, v in ipairs{ "origin_only", "edge", "edge_shield" } do exp:add{ lesson = "cdn", variant = v } end
local r = exp:run()
lab.report(r)
lab.check(r.origin_only.requests == r.edge.requests, "the same traffic")
lab.expect(r.edge.p50_region2 < 0.03 and r.origin_only.p50_region2 > 0.25,
           string.format("far region: median %.0f ms from the origin -> %.0f ms from its edge",
                         1000 * r.origin_only.p50_region2, 1000 * r.edge.p50_region2),
           { headline = true })
lab.expect(r.edge.p50_region0 < r.origin_only.p50_region0 / 3,
           "near region: the edge is faster too")
lab.expect(r.edge.origin_share < 0.3, string.format("edges take the origin load down to %.1f %% of requests",
                                                    100 * r.edge.origin_share))
lab.expect(r.edge_shield.origin_requests < 0.6 * r.edge.origin_requests,
           string.format("a shield cuts origin requests %d -> %d", r.edge.origin_requests,
                         r.edge_shield.origin_requests))

-- Part 2: hit ratio against max-age.
local ttl = lab.experiment{ name = "cdn: max-age", seed = 42, duration = "30s", warmup = "10s" }
ttl:workload{ arrivals = lab.poisson{ rps = 3000 }, keys = lab.uniform{ n = 1000 }, clients = 3000 }
local ages = { 0.5, 1, 5 }
for _, t in ipairs(ages) do
  ttl:add{ lesson = "cdn", variant = "edge", label = "max_age=" .. t .. "s", params = { max_age = t } }
end
local t = ttl:run()
lab.report(t)
local origin_rtts = { 0.020, 0.150, 0.250 }
for _, age in ipairs(ages) do
  local s = t["max_age=" .. age .. "s"]
  local lambda = 3000 / 3 / 1000
  local theory = 0
  for _, rtt in ipairs(origin_rtts) do
    local x = lambda * (age + rtt + 0.020)
    theory = theory + x / (1 + x) / 3
  end
  lab.expect(math.abs(s.hit_ratio - theory) < 0.01,
             string.format("max-age %g s: hit ratio %.1f %%, renewal theory %.1f %%", age,
                           100 * s.hit_ratio, 100 * theory))
end

-- Part 3: invalidation.
local inv = lab.experiment{ name = "cdn: invalidation", seed = 42, duration = "20s" }
inv:workload{ arrivals = lab.poisson{ rps = 3000 }, keys = lab.zipf{ n = 1000, s = 1.0 }, clients = 3000,
              writes = 0.001 }
for _, mode in ipairs{ "ttl", "purge", "versioned" } do
  inv:add{ lesson = "cdn", variant = "edge", label = mode,
           params = { invalidation = mode, purge_delay = "0.5s" } }
end
local i = inv:run()
lab.report(i)
lab.expect(i.purge.stale_responses > 0 and i.purge.stale_responses < i.ttl.stale_responses / 4,
           string.format("stale answers: %d with TTL only, %d with a 0.5 s purge", i.ttl.stale_responses,
                         i.purge.stale_responses))
lab.expect(i.versioned.stale_responses == 0, "versioned URLs: no stale answer")

-- Part 4: stale-while-revalidate.
local swr = lab.experiment{ name = "cdn: stale-while-revalidate", seed = 42, duration = "20s", warmup = "5s" }
swr:workload{ arrivals = lab.poisson{ rps = 3000 }, keys = lab.uniform{ n = 100 }, clients = 3000 }
swr:add{ lesson = "cdn", variant = "edge", label = "revalidate", params = { max_age = 2 } }
swr:add{ lesson = "cdn", variant = "edge", label = "swr", params = { max_age = 2, stale_while_revalidate = 60 } }
local w = swr:run()
lab.report(w)
lab.expect(w.swr.p99_region2 < 0.03 and w.revalidate.p99_region2 > 0.25,
           string.format("far region P99: %.0f ms waiting for the origin -> %.0f ms with stale-while-revalidate",
                         1000 * w.revalidate.p99_region2, 1000 * w.swr.p99_region2))

-- Part 5: an origin outage.
local out = lab.experiment{ name = "cdn: origin outage", seed = 42, duration = "15s" }
out:workload{ arrivals = lab.poisson{ rps = 3000 }, keys = lab.uniform{ n = 100 }, clients = 3000 }
out:add{ lesson = "cdn", variant = "edge", label = "no_stale", params = { max_age = 2 } }
out:add{ lesson = "cdn", variant = "edge", label = "stale_if_error", params = { max_age = 2, stale_if_error = 60 } }
out:at("5s", function(sys) sys:inject("origin_outage", { duration = "5s" }) end)
local o = out:run()
lab.report(o)
lab.expect(o.no_stale.errors > 1000 and o.stale_if_error.errors == 0,
           string.format("origin down 5 s: %d errors, none with stale-if-error (%d stale answers)",
                         o.no_stale.errors, o.stale_if_error.stale_if_error_served))
