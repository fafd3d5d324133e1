-- The tail at scale: fan-out amplifies rare slowness; hedged, tied and partial answers fix it.
--
-- Every leaf call waits 1 s with probability p = 1 % (a GC pause, a busy queue), else a few
-- milliseconds. A request that waits for N leaves is slow when any of them is:
-- P(slow) = 1 - (1 - p)^N (Dean & Barroso, "The Tail at Scale", 2013).
--
-- Part 1: the amplification curve for N = 1, 10, 100 (10 000 requests each). The measured share
--         of slow requests is a binomial proportion: it stays within 5 standard deviations
--         sqrt(P (1 - P) / n) of the formula (at most 0.024 at N = 100) on every seed.
-- Part 2: N = 5 leaves behind a chain of 4 services, 40 000 requests. Waiting for all leaves
--         puts 4.9 % of requests at 1 s: the P99 and the P99.9. Hedging after 14 ms (about the
--         leaf P95) or tying two copies leaves a request slow only when both copies of a leaf
--         are: 5 x 1e-4 = 5e-4 of requests, 20 expected, while the P99.9 is the 40th slowest
--         (P(Poisson(20) >= 40) ~ 1e-4): the P99.9 falls from 1 s to tens of ms. Partial
--         answers cut every request at the 50 ms deadline, missing ~1 % of leaf results.
--         The chain of 4 services, each up 99.9 % of the time, fails 1 - 0.999^4 = 0.40 % of
--         requests (sd 0.03 %: within 5 sd), one process 0.10 %, and it saves 4 hops (4 ms).
-- Part 3: replica 0 of every leaf dies at 4 s. A client caching the registry for 10 s keeps
--         sending half its calls to it until 10 s; health-checked discovery stops at 5 s.
local lab = require "hldlab"

-- Part 1: the curve.
local curve = lab.experiment{ name = "tail at scale: fan-out amplification", seed = 7, duration = "10s" }
curve:workload{ arrivals = lab.constant{ rps = 1000 }, keys = lab.uniform{ n = 1000 } }
local fan_outs = { 1, 10, 100 }
for _, n in ipairs(fan_outs) do
  curve:add{ lesson = "tail_at_scale", variant = "fan_out", label = "N=" .. n,
             params = { leaves = n, depth = 0 } }
end
local c = curve:run()
lab.report(c)
for _, n in ipairs(fan_outs) do
  local s = c["N=" .. n]
  local theory = 1 - (1 - 0.01) ^ n
  local sd = math.sqrt(theory * (1 - theory) / s.requests)
  lab.expect(math.abs(s.slow_share - theory) < 5 * sd,
             string.format("N=%d: %.2f %% of requests slow, 1-(1-p)^N = %.2f %%", n,
                           100 * s.slow_share, 100 * theory))
end
lab.expect(c["N=100"].slow_share > 0.5, "at 100 leaves most requests are slow although 99 % of leaf calls are fast")

-- Part 2: the fixes, on identical traffic.
local exp = lab.experiment{ name = "tail at scale: fixes", seed = 42, duration = "20s" }
exp:workload{ arrivals = lab.poisson{ rps = 2000 }, keys = lab.uniform{ n = 1000 } }
for _, v in ipairs{ "fan_out", "monolith", "hedged", "tied", "partial" } do
  exp:add{ lesson = "tail_at_scale", variant = v, params = { leaves = 5 } }
end
local r = exp:run()
lab.report(r)
lab.check(r.fan_out.requests == r.hedged.requests, "every variant saw the same traffic")
lab.check(r.fan_out.unfinished == 0 and r.hedged.unfinished == 0, "every request answered")
lab.expect(r.fan_out.p999 > 0.9, "waiting for every leaf: the P99.9 is a slow leaf call (1 s)")
lab.expect(r.hedged.p999 < r.fan_out.p999 / 10 and r.hedged.extra_copies < 0.08,
           string.format("hedging at the leaf P95 cuts the P99.9 %.0f ms -> %.0f ms for %.1f %% more calls",
                         1000 * r.fan_out.p999, 1000 * r.hedged.p999, 100 * r.hedged.extra_copies),
           { headline = true })
lab.expect(r.tied.p999 < r.fan_out.p999 / 10,
           string.format("tied requests cut the P99.9 to %.0f ms (duplicated work %.1f %%)",
                         1000 * r.tied.p999, 100 * r.tied.extra_work))
lab.expect(r.partial.max <= 0.0541 and r.partial.completeness > 0.97,
           string.format("partial answers end by the deadline with %.2f %% of leaf results",
                         100 * r.partial.completeness))
local chain_theory = 1 - 0.999 ^ 4
local chain_sd = math.sqrt(chain_theory * (1 - chain_theory) / r.fan_out.requests)
lab.expect(math.abs(r.fan_out.chain_errors / r.fan_out.requests - chain_theory) < 5 * chain_sd,
           string.format("4 services in a chain fail %.2f %% of requests (1 - 0.999^4 = %.2f %%)",
                         100 * r.fan_out.chain_errors / r.fan_out.requests, 100 * chain_theory))
lab.expect(r.monolith.errors < r.fan_out.errors / 2 and r.monolith.p50 < r.fan_out.p50 - 0.0035,
           "one process: fewer failures and 4 network hops less at the median")

-- Part 3: service discovery after a replica dies.
local disc = lab.experiment{ name = "tail at scale: discovery", seed = 42, duration = "20s" }
disc:workload{ arrivals = lab.poisson{ rps = 200 }, keys = lab.uniform{ n = 1000 } }
disc:add{ lesson = "tail_at_scale", variant = "fan_out", label = "registry_cache",
          params = { leaves = 5, registry_ttl = "10s" } }
disc:add{ lesson = "tail_at_scale", variant = "fan_out", label = "health_checked",
          params = { leaves = 5, discovery = "health_checked" } }
disc:at("4s", function(sys) sys:inject("kill_replica", { replica = 0 }) end)
local d = disc:run()
lab.report(d)
lab.expect(d.health_checked.calls_to_dead < d.registry_cache.calls_to_dead / 3,
           string.format("a dead replica gets %d calls behind a 10 s registry cache, %d with health checks",
                         d.registry_cache.calls_to_dead, d.health_checked.calls_to_dead))
