-- Quorums and CAP on identical traffic: N = 3 replicas, 1 to 10 ms between them.
-- A read is stale when it returns a version older than one acknowledged to any client before
-- the read started.
--
-- Part 1: replica 0 is cut off from 10 s to 20 s (its clients stay with it). AP keeps
--         answering on both sides: reads miss the other side's writes, keys are written on
--         both sides, and at heal last-write-wins throws one side's acknowledged writes away.
--         CP (R = W = 2) rejects what the isolated replica cannot get a quorum for: a third
--         of the traffic for 10 s, and nothing stale, nothing to reconcile.
-- Part 2: no fault, strict quorums. With R + W <= N a read quorum can miss the replicas of
--         the latest acked write: stale reads. With R + W > N every read quorum overlaps every
--         write quorum: not one stale read.
local lab = require "hldlab"

local traffic = {
  arrivals = lab.poisson{ rps = 1000 },
  keys = lab.uniform{ n = 1000 },  -- more keys than writes in the window: not all collide
  clients = 300,
  writes = 0.3,
  service = "1ms",
}

local p = lab.experiment{ name = "quorum_cap: partition", seed = 42, duration = "30s" }
p:workload(traffic)
p:add{ lesson = "quorum_cap", variant = "ap" }
p:add{ lesson = "quorum_cap", variant = "cp" }
p:at("10s", function(sys) sys:inject("partition", { nodes = { 0 } }) end)
p:at("20s", function(sys) sys:inject("heal", {}) end)
local c = p:run()
lab.report(c)
lab.expect(c.ap.rejected == 0 and c.cp.rejected > 2500,
           "CP rejects the isolated side's operations, AP takes them all")
lab.expect(c.ap.stale_reads > 0 and c.cp.stale_reads == 0, "AP serves stale reads, CP none")
lab.expect(c.ap.conflict_keys > 0 and c.ap.lww_dropped > 0,
           "AP: keys written on both sides; last-write-wins drops acknowledged writes")
lab.expect(c.cp.conflict_keys == 0 and c.cp.lww_dropped == 0, "CP: nothing to reconcile")
lab.expect(c.ap.divergent_at_heal > 0 and c.ap.divergent_1s_after_heal == 0,
           "AP replicas diverge during the partition and agree again after reconciliation")

local q = lab.experiment{ name = "quorum_cap: R and W", seed = 42, duration = "30s" }
traffic.keys = lab.uniform{ n = 100 }  -- few keys: reads often follow a write of their key
q:workload(traffic)
for _, rw in ipairs{ { 1, 1 }, { 1, 2 }, { 2, 1 }, { 2, 2 }, { 1, 3 }, { 3, 1 } } do
  q:add{ lesson = "quorum_cap", variant = "cp", label = "r" .. rw[1] .. "w" .. rw[2],
         params = { read_quorum = rw[1], write_quorum = rw[2] } }
end
local r = q:run()
lab.report(r)
lab.expect(r.r1w1.stale_reads > 0 and r.r1w2.stale_reads > 0 and r.r2w1.stale_reads > 0,
           "R + W <= N: stale reads")
lab.expect(r.r2w2.stale_reads == 0 and r.r1w3.stale_reads == 0 and r.r3w1.stale_reads == 0,
           "R + W > N: no stale read at all")
