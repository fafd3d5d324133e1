-- HyperLogLog: "how many unique visitors?" across the 10 web servers of a site. Every variant
-- sees the same visits (writes), each landing on a server chosen per visit (the same in every
-- variant), and the same "how many?" queries (reads, 0.1%).
--
-- Part 1: 50 000 visits/s for 4 s from 100 000 possible visitors (about 86 500 of them come,
--         2.3 visits each): the exact set counts them exactly in a table that keeps growing;
--         adding the servers' own counts counts a visitor once per server it reached;
--         HyperLogLogs of 2^14 registers per server (16 KiB), merged by register-wise max,
--         count each visitor once with a relative standard error of 1.04/sqrt(2^14) = 0.81%.
--         After 100 visits, the raw HyperLogLog estimate is still alpha m = 11 800: linear
--         counting on the empty registers corrects it.
-- Part 2: the first 2 s of the same visits (about 63 000 visitors) with 2^10, 2^12, 2^14 and
--         2^16 registers: the error scales as 1.04/sqrt(m), the memory as m.
--
-- Theory: the merged sketch is exactly the sketch of all the visits, so its relative error has
-- a standard deviation of 1.04/sqrt(m) (0.81%; a little less at 5 m visitors); the claims
-- allow 5 of them. Linear counting's standard error at n = 100 is about 1/sqrt(2 m) = 0.55%;
-- the claim allows 5%.
local lab = require "hldlab"

local function pct(x) return string.format("%.2f%%", 100 * x) end
local traffic = { arrivals = lab.poisson{ rps = 50000 }, keys = lab.uniform{ n = 100000 },
                  writes = 0.999 }

-- Part 1 ------------------------------------------------------------------------------------
local exp = lab.experiment{ name = "hyperloglog: unique visitors across 10 servers", seed = 42,
                            duration = "4s" }
exp:workload(traffic)
for _, v in ipairs{ "exact_set", "sum_of_servers", "hll_raw", "hll" } do
  exp:add{ lesson = "hyperloglog", variant = v }
end
local early = {}
exp:at("2ms", function(sys) early[sys.label] = sys:call("count", {}) end)
local r = exp:run()
lab.report(r)
print(string.format("after %d visitors:  exact %d   sum_of_servers %.0f   hll_raw %.0f   hll %.1f",
                    early.exact_set.visitors, early.exact_set.estimate, early.sum_of_servers.estimate,
                    early.hll_raw.estimate, early.hll.estimate))
local exact, sum, raw, hll = r.exact_set, r.sum_of_servers, r.hll_raw, r.hll
for _, v in ipairs{ "sum_of_servers", "hll_raw", "hll" } do
  lab.check(r[v].visitors == exact.visitors and r[v].visits == exact.visits,
            v .. ": the same visits as the exact set")
  lab.check(r[v].completed == r[v].requests, v .. ": every request ends, exactly once")
end
lab.check(exact.estimate == exact.visitors, "the exact set counts exactly")
lab.expect(math.abs(hll.relative_error) < 5 * hll.standard_error and sum.relative_error > 0.5,
           string.format("%d unique visitors on 10 servers: merged HyperLogLogs are off by %s in "
                         .. "%d KiB; adding the servers' counts says %s more", exact.visitors,
                         pct(hll.relative_error), hll.memory_bytes // 1024, pct(sum.relative_error)),
           { headline = true })
lab.expect(exact.memory_bytes > 50 * early.exact_set.memory_bytes
           and hll.memory_bytes == early.hll.memory_bytes,
           string.format("the exact set grew from %d to %d bytes (%.1f a visitor); the sketches stay "
                         .. "at %d", early.exact_set.memory_bytes, exact.memory_bytes,
                         exact.bytes_per_visitor, hll.memory_bytes))
lab.expect(early.hll_raw.estimate > 50 * early.hll_raw.visitors
           and math.abs(early.hll.relative_error) < 0.05,
           string.format("with %d visitors the raw estimate says %.0f; linear counting says %.1f",
                         early.hll.visitors, early.hll_raw.estimate, early.hll.estimate))
lab.expect(math.abs(raw.relative_error) < 5 * raw.standard_error,
           "with 86 500 visitors (5 m) the raw estimate is right too: the correction only matters "
           .. "below 2.5 m")
print(string.format("the price of the sketches: a count merges 10 x 16 KiB of registers (%.0f us at "
                    .. "P99) where the exact set reads its size; the exact set pays when it grows "
                    .. "(a rehash of every id: max latency %.1f ms)", hll.count_p99 * 1e6, exact.max * 1e3))

-- Part 2 ------------------------------------------------------------------------------------
local sweep = lab.experiment{ name = "hyperloglog: registers against error", seed = 42,
                              duration = "2s" }
sweep:workload(traffic)
for _, p in ipairs{ 10, 12, 14, 16 } do
  sweep:add{ lesson = "hyperloglog", variant = "hll", label = "m = 2^" .. p,
             params = { precision = p } }
end
local s = sweep:run()
lab.report(s)
for i = 1, 4 do
  lab.expect(math.abs(s[i].relative_error) < 5 * s[i].standard_error,
             string.format("%s (%d KiB): off by %s, standard error %s", s[i].label,
                           s[i].memory_bytes // 1024, pct(s[i].relative_error),
                           pct(s[i].standard_error)))
end
