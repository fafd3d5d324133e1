-- Circuit breaker and bulkhead: a caller with 40 connections calls two downstreams (requests
-- with an even key call downstream 0, odd keys downstream 1), 200 rps, ~20 ms per call.
--
-- Part 1: downstream 0 hangs from 20 s to 60 s (fault downstream_hang, then downstream_recover).
--         Its calls hold a connection for the full 30 s timeout. Without protection the shared
--         pool is exhausted in a fraction of a second and the caller refuses requests for the
--         healthy downstream 1 too: its availability collapses (a cascade) until the hung calls
--         time out after the recovery. A bulkhead confines the damage to downstream 0's own
--         pool; the breaker opens when the timeouts pile up, fails fast, probes and closes.
-- Part 2: downstream 0 fails every call from 20 s to 40 s (fault downstream_errors). The breaker
--         opens after half of its window fails, stops calling the broken dependency, probes every
--         5 s and closes again after the recovery: closed -> open -> half_open -> ... -> closed.
local lab = require "hldlab"

-- Availability of downstream d's requests answered between two snapshots of sys:call("stats").
local function availability(before, after, d)
  local ok = after["ok_" .. d] - before["ok_" .. d]
  local failed = after["failed_" .. d] - before["failed_" .. d]
  return ok + failed > 0 and ok / (ok + failed) or 1
end

local hang = lab.experiment{ name = "circuit_breaker: downstream 0 hangs 20s..60s", seed = 3,
                             duration = "150s" }
hang:workload{ arrivals = lab.poisson{ rps = 200 }, keys = lab.uniform{ n = 1000 },
               service = lab.lognormal{ median = "20ms", p99 = "100ms" } }
local sys = {}
for _, v in ipairs{ "none", "breaker", "bulkhead", "breaker_bulkhead" } do
  sys[v] = hang:add{ lesson = "circuit_breaker", variant = v, params = { pool = 40 } }
end
local snap = {}
for _, t in ipairs{ "20s", "60s", "100s", "140s" } do
  hang:at(t, function(s)
    snap[t] = snap[t] or {}
    snap[t][s.label] = s:call("stats", {})
  end)
end
hang:at("20s", function(s) s:inject("downstream_hang", { downstream = 0 }) end)
hang:at("60s", function(s) s:inject("downstream_recover", { downstream = 0 }) end)
local h = hang:run()
lab.report(h)
print("availability of the HEALTHY downstream 1 while downstream 0 hangs (20s..60s), and of " ..
      "downstream 0 from 100s to 140s:")
local during, late = {}, {}
for _, v in ipairs{ "none", "breaker", "bulkhead", "breaker_bulkhead" } do
  during[v] = availability(snap["20s"][v], snap["60s"][v], 1)
  late[v] = availability(snap["100s"][v], snap["140s"][v], 0)
  print(string.format("  %-17s downstream 1 during: %6.2f%%   downstream 0 after: %6.2f%%",
                      v, 100 * during[v], 100 * late[v]))
end
local t = sys.breaker_bulkhead:call("transitions", {})
local seq = {}
for _, x in ipairs(t) do seq[#seq + 1] = string.format("%s@%.1fs", x.to, x.at) end
print("breaker_bulkhead transitions: " .. table.concat(seq, " "))
lab.expect(during.none < 0.05, "no protection: the healthy downstream's requests fail too (cascade)")
lab.expect(during.bulkhead > 0.99 and during.breaker_bulkhead > 0.99,
           "bulkhead: the healthy downstream keeps over 99% availability", { headline = true })
lab.expect(during.breaker > 2 * during.none,
           "breaker alone: the cascade stops once the timeouts open the breaker")
lab.expect(h.breaker_bulkhead.short_circuited > 0 and t[1].to == "open" and t[#t].to == "closed",
           "the breaker opened, failed fast, and closed again after the recovery")
lab.expect(late.none == 1 and late.breaker == 1 and late.breaker_bulkhead == 1,
           "everyone recovers in the end")

local errors = lab.experiment{ name = "circuit_breaker: downstream 0 fails 20s..40s", seed = 3,
                               duration = "60s" }
errors:workload{ arrivals = lab.poisson{ rps = 200 }, keys = lab.uniform{ n = 1000 },
                 service = lab.lognormal{ median = "20ms", p99 = "100ms" } }
local eb = {}
for _, v in ipairs{ "none", "breaker" } do
  eb[v] = errors:add{ lesson = "circuit_breaker", variant = v }
end
errors:at("20s", function(s) s:inject("downstream_errors", { downstream = 0, rate = 1.0 }) end)
errors:at("40s", function(s) s:inject("downstream_recover", { downstream = 0 }) end)
local e = errors:run()
lab.report(e)
local states = {}
for _, x in ipairs(eb.breaker:call("transitions", {})) do states[#states + 1] = x.to end
print("breaker transitions: closed -> " .. table.concat(states, " -> "))
lab.expect(states[1] == "open" and states[2] == "half_open" and states[#states] == "closed",
           "closed -> open -> half_open -> ... -> closed")
lab.expect(e.none.downstream_calls - e.breaker.downstream_calls > 0.9 * 100 * 20,
           "the open breaker spares the broken dependency over 90% of its calls during the outage")
lab.expect(e.breaker.errors < e.none.errors / 50, "and fails them fast instead of as errors")
