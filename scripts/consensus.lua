-- Consensus: Raft leader election, 5 nodes, 1-10 ms one-way network delay, heartbeats every
-- 50 ms. The shape of figure 16 in the Raft paper (Ongaro and Ousterhout, 2014): time to
-- elect a new leader after the leader crashes, over 1000 crash/elect trials per timeout range.
--
-- 150-150 ms (fixed): the followers time out within a few ms of each other, stand in the same
-- term, split the votes and do it again 150 ms later; elections take seconds, sometimes
-- minutes. Any randomness helps, and the wider the range the rarer the split votes.
-- Meanwhile the live cluster serves client commands; its leader crashes every 2 s (and comes
-- back 1 s later) and the commands wait (up to 1 s) for the next leader.
local lab = require "hldlab"

local exp = lab.experiment{ name = "consensus: time to elect a leader", seed = 42, duration = "30s" }
exp:workload{ arrivals = lab.poisson{ rps = 200 }, service = "1ms" }
local ranges = { { 150, "fixed" }, { 155, "randomized" }, { 175, "randomized" },
                 { 200, "randomized" }, { 300, "randomized" } }
local runs = {}
for _, range in ipairs(ranges) do
  local label = "t150_" .. range[1]
  local sys = exp:add{ lesson = "consensus", variant = range[2], label = label,
                       params = { election_timeout_min = "150ms",
                                  election_timeout_max = range[1] .. "ms" } }
  runs[#runs + 1] = { label = label, e = sys:call("elections", { trials = 1000 }) }
end
for t = 2, 28, 2 do
  exp:at(t, function(sys) sys:inject("crash_leader", { restart_after = "1s" }) end)
end
local r = exp:run()
lab.report(r)

print("timeout range   mean ms    p99 ms    max ms  split votes")
for _, run in ipairs(runs) do
  print(string.format("%-13s %9.1f %9.1f %9.1f %12d", run.label, run.e.mean_ms, run.e.p99_ms,
                      run.e.max_ms, run.e.split_votes))
end

local fixed, r155, r175, r200, r300 = r.t150_150, r.t150_155, r.t150_175, r.t150_200, r.t150_300
lab.expect(fixed.elections == 1000 and r300.elections == 1000, "1000 elections measured per range")
lab.expect(fixed.elect_mean_ms > 10 * r155.elect_mean_ms,
           "fixed 150-150 ms takes over 10x longer on average than even 150-155 ms",
           { headline = true })
lab.expect(fixed.elect_p99_ms > 10 * r155.elect_p99_ms, "and over 10x longer at P99")
lab.expect(r155.elect_mean_ms > r175.elect_mean_ms and r175.elect_mean_ms > r200.elect_mean_ms,
           "wider ranges elect faster on average (155 > 175 > 200)")
lab.expect(r155.elect_p99_ms > r175.elect_p99_ms and r175.elect_p99_ms > r200.elect_p99_ms and
           r200.elect_p99_ms > r300.elect_p99_ms, "and at P99 all the way to 150-300 ms")
lab.expect(fixed.split_votes > r155.split_votes and r155.split_votes > r175.split_votes and
           r175.split_votes > r200.split_votes and r200.split_votes > r300.split_votes,
           "split votes fall as the range widens")
lab.expect(fixed.leaderless_ms > 3 * r300.leaderless_ms and fixed.p99 > 3 * r300.p99,
           "live crashes: the fixed-timeout cluster stays leaderless longer, commands wait longer")
