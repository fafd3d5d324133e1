-- Consensus: Raft leader election after a leader crash, in the setup of figure 16 of the Raft
-- paper (Ongaro and Ousterhout, 2014): 5 servers, a broadcast time of 15 ms (2 ms network each
-- way, 11 ms to persist a vote), heartbeats every half minimum timeout, the leader crashed at a
-- random point of its heartbeat interval, the survivors' logs of different lengths (so some
-- candidates cannot win). 1000 crash/elect trials per timeout range (100 for 150-150 ms, as in
-- the paper).
--
-- 150-150 ms (fixed): the followers time out within a fraction of a millisecond of each other,
-- stand in the same term, split the votes and do it again 150 ms later: elections take
-- seconds. Any randomness helps, and the wider the range the rarer the split votes.
-- Then a live cluster serves client commands while its leader crashes every 2 s (and comes
-- back 1 s later); the commands wait (up to 1 s) for the next leader.
local lab = require "hldlab"

-- 1. Figure 16: time from the crash to the next leader, per timeout range.
local fig = lab.experiment{ name = "consensus: figure 16, time to elect a new leader", seed = 42,
                            duration = "1s", drain = "100000s" }
fig:workload{ arrivals = lab.poisson{ rps = 10 }, service = "1ms" }
local ranges = {  -- min, max, what the paper reports
  { 150, 150, "over 10 s in every trial" }, { 150, 151, "" },
  { 150, 155, "median 287 ms" }, { 150, 175, "" }, { 150, 200, "max 513 ms" },
  { 150, 300, "recommended" }, { 12, 24, "mean 35 ms, max 152 ms" }, { 25, 50, "" },
  { 50, 100, "" }, { 100, 200, "" } }
local systems = {}
for _, range in ipairs(ranges) do
  local min, max = range[1], range[2]
  local sys = fig:add{ lesson = "consensus", variant = min == max and "fixed" or "randomized",
                       label = "t" .. min .. "_" .. max,
                       params = { election_timeout_min = min .. "ms",
                                  election_timeout_max = max .. "ms" } }
  sys:call("elections", { trials = min == max and 100 or 1000 })
  systems[#systems + 1] = { sys = sys, range = range }
end
local r = fig:run()

local function ms(seconds) return seconds * 1000 end
print("timeout range  trials   p10 ms   p50 ms  mean ms   p99 ms   max ms  split votes   paper")
for _, s in ipairs(systems) do
  local e = s.sys:call("election_times", {})
  lab.check(e.no_leader == 0 and e.trials_left == 0, s.sys.label .. ": every trial elected a leader")
  local sorted = e.samples_ms
  table.sort(sorted)
  print(string.format("%3d-%-3d ms  %8d %8.0f %8.0f %8.0f %8.0f %8.0f %12d   %s", s.range[1],
                      s.range[2], e.elections, sorted[math.ceil(0.1 * #sorted)], ms(e.elect_p50),
                      ms(e.elect_mean), ms(e.elect_p99), ms(e.elect_max), e.split_votes,
                      s.range[3]))
  -- After the crash the followers wait at least min timeout - heartbeat (= min / 2), then a
  -- vote takes two network delays and a disk write (>= 14 ms).
  lab.check(sorted[1] >= s.range[1] / 2 + 14, s.sys.label .. ": no election before min/2 + 14 ms")
end

local fixed, r151, r155, r175 = r.t150_150, r.t150_151, r.t150_155, r.t150_175
local r200, r300 = r.t150_200, r.t150_300
lab.expect(fixed.elect_p50 > 10 * r155.elect_p50,
           "150-150 ms (fixed) takes over 10x longer than 150-155 ms (median)", { headline = true })
lab.expect(fixed.elect_p50 > 3 * r151.elect_p50, "even 1 ms of randomness elects 3x faster (median)")
lab.expect(r151.elect_p99 > r155.elect_p99 and r155.elect_p99 > r175.elect_p99,
           "more randomness shortens the tail: P99 150-151 > 150-155 > 150-175 ms")
lab.expect(r200.elect_max < 1 and r300.elect_max < 1,
           "with 50 ms or more of randomness every trial elects within 1 s")
lab.expect(r155.split_votes > r175.split_votes and r175.split_votes > r200.split_votes and
           r200.split_votes > r300.split_votes, "split votes fall as the range widens")
lab.expect(r.t12_24.elect_p50 < r.t25_50.elect_p50 and r.t25_50.elect_p50 < r.t50_100.elect_p50 and
           r.t50_100.elect_p50 < r.t100_200.elect_p50 and r.t100_200.elect_p50 < r300.elect_p50,
           "shorter timeouts elect faster (median, 12-24 up to 150-300 ms)")

-- 2. A live cluster under client load, its leader crashing every 2 s.
local live = lab.experiment{ name = "consensus: commands across leader crashes", seed = 42,
                             duration = "30s" }
live:workload{ arrivals = lab.poisson{ rps = 200 }, service = "1ms" }
for _, variant in ipairs{ "fixed", "randomized" } do
  local sys = live:add{ lesson = "consensus", variant = variant }
  -- The messages around the first crash, for the report's space-time diagram (--report).
  sys:trace{ from = "1.9s", to = "2.6s" }
end
for t = 2, 28, 2 do
  live:at(t, function(sys) sys:inject("crash_leader", { restart_after = "1s" }) end)
end
local l = live:run()
lab.report(l)
lab.expect(l.fixed.leaderless > 3 * l.randomized.leaderless,
           "live crashes: the fixed-timeout cluster stays leaderless over 3x longer")
lab.expect(l.fixed.timeouts > 10 * (l.randomized.timeouts + 1),
           "and over 10x more commands time out waiting for a leader")
