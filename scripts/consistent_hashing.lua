-- Consistent hashing: what moves when a node joins or leaves, and what a lopsided placement
-- does to P99. Every variant places the same 200 000-key sample and serves the same traffic
-- (each request queues on the node that owns its key). The seed places the nodes (ring
-- points, Maglev permutations, rendezvous scores) and salts the keys' hashes: every seed is
-- another placement, the same one for every variant.
--
-- Part 1: 10 -> 11 nodes at 10 s. hash % n remaps 10/11 (91%) of the keys; the consistent
--         placements move ~1/11 (9.1%), all of it to the new node (moved_other = 0).
-- Part 2: 10 -> 9 nodes: node 3 is killed at 10 s. Only node 3's keys move, except with mod N.
-- Part 3: Zipf keys (a few very hot keys) at 60% load: whichever node owns the hottest key is
--         overloaded under every pure hash; bounded loads cap each node's queue at 1.25x the
--         average and walk the ring past full nodes.
--
-- Theory, with K sample keys and a move that concerns a share p of them (p = 1/11 for the
-- new node, 1/10 for a dead one): jump, rendezvous and mod N decide each key on its own, so
-- the moved fraction is Binomial(K, p) / K (sd 0.06 points). On a ring with v points per
-- node, one node's v arcs among m = n v are a Beta(v, m - v) share of the circle: sd
-- sqrt(p (1 - p) / (m + 1)), 0.7 points for 160 vnodes. Claims allow 5 sd (a miss in 1.7
-- million placements). The coefficient of variation of the keys per node has
-- E[CV^2] = (n - 1) / (n v + 1): 91% for one point per node, 7.5% for 160, about 12x apart.
local lab = require "hldlab"

local K, V = 200000, 160
local variants = { "mod_n", "ring", "ring_vnodes", "jump", "rendezvous", "maglev", "bounded_load" }
local traffic = {
  arrivals = lab.poisson{ rps = 600 },  -- 60% load on average
  keys = lab.uniform{ n = 1000000 },
  service = lab.exponential{ mean = "10ms" },
}

local function sd_binomial(p) return math.sqrt(p * (1 - p) / K) end
local function sd_ring(p, points) return math.sqrt(p * (1 - p) * (1 / (points + 1) + 1 / K)) end
local function near(x, expected, sd) return math.abs(x - expected) < 5 * sd end
local function pct(x) return string.format("%.2f%%", 100 * x) end

local function membership_change(name, change)
  local exp = lab.experiment{ name = name, seed = 42, duration = "30s" }
  exp:workload(traffic)
  for _, v in ipairs(variants) do
    exp:add{ lesson = "consistent_hashing", variant = v,
             params = { nodes = 10, vnodes = V, sample_keys = K } }
  end
  exp:at("10s", change)
  local r = exp:run()
  lab.report(r)
  return r
end

local grow = membership_change("consistent_hashing: 10 -> 11 nodes (add_node at 10s)",
                               function(sys) sys:call("add_node", {}) end)
local p = 1 / 11
lab.expect(near(grow.mod_n.moved, 1 - p, sd_binomial(p)),
           "mod N moves 10/11 of the keys (" .. pct(grow.mod_n.moved) .. ")")
lab.expect(near(grow.ring_vnodes.moved, p, sd_ring(p, 11 * V)),
           "ring_vnodes moves ~1/11 of the keys (" .. pct(grow.ring_vnodes.moved) .. ")")
for _, v in ipairs{ "jump", "rendezvous" } do
  lab.expect(near(grow[v].moved, p, sd_binomial(p)),
             v .. " moves 1/11 of the keys (" .. pct(grow[v].moved) .. ")")
end
-- Maglev: the new node claims M/11 table entries (within one) and a few entries change hands
-- between old nodes (the table is nearly, not perfectly, minimally disruptive).
lab.expect(near(grow.maglev.moved - grow.maglev.moved_other, p, sd_binomial(p))
           and grow.maglev.moved_other < 0.03,
           "maglev moves 1/11 of the keys to the new node and under 3% between old ones ("
           .. pct(grow.maglev.moved_other) .. ")")
for _, v in ipairs{ "ring", "ring_vnodes", "jump", "rendezvous" } do
  lab.expect(grow[v].moved_other == 0, v .. ": every moved key went to the new node")
end
-- CV(1 point) / CV(160 points) is ~12; below 2.5 in fewer than 1e-5 of placements.
lab.expect(grow.ring.key_cv > 2.5 * grow.ring_vnodes.key_cv,
           string.format("one point per node: far less even than %d virtual nodes (key CV %.1f%% vs %.1f%%)",
                         V, 100 * grow.ring.key_cv, 100 * grow.ring_vnodes.key_cv))
lab.expect(grow.ring.p99 > 2 * grow.ring_vnodes.p99, "and the node with the biggest arc shows in P99")

local shrink = membership_change("consistent_hashing: 10 -> 9 nodes (node 3 killed at 10s)",
                                 function(sys) sys:inject("kill", { node = 3 }) end)
-- mod N: a key stays only if its index among 10 and among 9 names the same node: 9 of the 90
-- residues mod 90.
lab.expect(near(shrink.mod_n.moved, 0.9, sd_binomial(0.9)), "mod N moves 90% of the keys when a node dies")
for _, v in ipairs{ "ring", "ring_vnodes", "jump", "rendezvous" } do
  lab.expect(shrink[v].moved_other == 0, v .. ": only the dead node's keys move")
end
lab.expect(near(shrink.ring_vnodes.moved, 0.1, sd_ring(0.1, 10 * V))
           and near(shrink.jump.moved, 0.1, sd_binomial(0.1))
           and near(shrink.rendezvous.moved, 0.1, sd_binomial(0.1)),
           "and they were 1/10 of the keys")

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
