-- Consistent hashing: what moves when a node joins or leaves, and what a lopsided placement
-- does to P99. Every variant places the same 200 000-key sample and serves the same traffic
-- (each request queues on the node that owns its key).
--
-- Part 1: 10 -> 11 nodes at 10 s. hash % n remaps 10/11 (91%) of the keys; the consistent
--         placements move ~1/11 (9.1%), all of it to the new node (moved_other = 0).
-- Part 2: 10 -> 9 nodes: node 3 is killed at 10 s. Only node 3's keys move, except with mod N.
-- Part 3: Zipf keys (a few very hot keys) at 60% load: whichever node owns the hottest key is
--         overloaded under every pure hash; bounded loads cap each node's queue at 1.25x the
--         average and walk the ring past full nodes.
local lab = require "hldlab"

local variants = { "mod_n", "ring", "ring_vnodes", "jump", "rendezvous", "maglev", "bounded_load" }
local consistent = { "ring_vnodes", "jump", "rendezvous", "maglev" }
local traffic = {
  arrivals = lab.poisson{ rps = 400 },
  keys = lab.uniform{ n = 1000000 },
  service = lab.exponential{ mean = "10ms" },
}

local function membership_change(name, change)
  local exp = lab.experiment{ name = name, seed = 42, duration = "30s" }
  exp:workload(traffic)
  for _, v in ipairs(variants) do
    exp:add{ lesson = "consistent_hashing", variant = v,
             params = { nodes = 10, vnodes = 160, sample_keys = 200000 } }
  end
  exp:at("10s", change)
  local r = exp:run()
  lab.report(r)
  return r
end

local grow = membership_change("consistent_hashing: 10 -> 11 nodes (add_node at 10s)",
                               function(sys) sys:call("add_node", {}) end)
lab.expect(math.abs(grow.mod_n.moved - 10 / 11) < 0.01, "mod N moves ~90.9% of the keys")
for _, v in ipairs(consistent) do
  lab.expect(math.abs(grow[v].moved - 1 / 11) < 0.015,
             v .. " moves ~9.1% of the keys (" .. string.format("%.2f%%", 100 * grow[v].moved) .. ")")
end
for _, v in ipairs{ "ring", "ring_vnodes", "jump", "rendezvous" } do
  lab.expect(grow[v].moved_other == 0, v .. ": every moved key went to the new node")
end
lab.expect(grow.ring.key_cv > 3 * grow.ring_vnodes.key_cv,
           "one point per node: far less even than 160 virtual nodes")
lab.expect(grow.ring.p99 > 3 * grow.ring_vnodes.p99, "and the node with the biggest arc shows in P99")

local shrink = membership_change("consistent_hashing: 10 -> 9 nodes (node 3 killed at 10s)",
                                 function(sys) sys:inject("kill", { node = 3 }) end)
lab.expect(shrink.mod_n.moved > 0.8, "mod N moves most keys when a node dies")
for _, v in ipairs{ "ring", "ring_vnodes", "jump", "rendezvous" } do
  lab.expect(shrink[v].moved_other == 0 and shrink[v].moved < 0.2,
             v .. ": only the dead node's keys move")
end

local hot = lab.experiment{ name = "consistent_hashing: hot keys (zipf 1.1) at 60% load", seed = 42,
                            duration = "60s" }
hot:workload{ arrivals = lab.poisson{ rps = 600 }, keys = lab.zipf{ n = 100000, s = 1.1 },
              service = lab.exponential{ mean = "10ms" } }
for _, v in ipairs{ "mod_n", "ring_vnodes", "jump", "bounded_load" } do
  hot:add{ lesson = "consistent_hashing", variant = v, params = { sample_keys = 20000 } }
end
local h = hot:run()
lab.report(h)
lab.expect(h.bounded_load.req_max_mean < 1.5, "bounded loads keep the busiest node near the mean")
lab.expect(h.bounded_load.p99 < h.ring_vnodes.p99 / 5, "and cut P99 more than five-fold")
