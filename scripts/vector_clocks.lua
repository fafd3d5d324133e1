-- Vector clocks vs last write wins, on identical traffic.
--
-- Two replicas both accept writes (client % 2 picks the replica) and replicate to each other
-- after 20 ms. 200 requests per second on 50 keys, half of them read-modify-writes.
-- Writes to the same key on both replicas within the replication delay are concurrent: last
-- write wins keeps the one with the higher timestamp and silently drops the other; vector
-- clocks keep both as siblings, surface them to readers, and the next write merges them.
-- At 20 s replica 0 is partitioned away for 10 s (every write on a shared key becomes
-- concurrent); at 40 s replica 1's clock falls 500 ms behind, so last write wins drops even
-- writes that came later.
local lab = require "hldlab"

local exp = lab.experiment{ name = "vector_clocks", seed = 42, duration = "60s" }
-- No traffic in the last second, so replication has finished when the run ends.
-- Replicas answer at once (the lesson ignores the service time).
exp:workload{ arrivals = lab.poisson{ rps = 200, ramp = { to = 0, start = "59s", finish = "59s" } },
              keys = lab.uniform{ n = 50 }, writes = 0.5 }
local lww_sys = exp:add{ lesson = "vector_clocks", variant = "last_write_wins",
                        params = { replication_delay = "20ms" } }
local vc_sys = exp:add{ lesson = "vector_clocks", variant = "vector_clocks",
                       params = { replication_delay = "20ms" } }
-- Replication around the partition, for the report's space-time diagram (--report).
lww_sys:trace{ from = "19.9s", to = "20.1s" }
vc_sys:trace{ from = "19.9s", to = "20.1s" }
exp:at("20s", function(sys) sys:inject("partition", { replica = 0 }) end)
exp:at("30s", function(sys) sys:inject("heal", {}) end)
exp:at("40s", function(sys) sys:inject("clock_skew", { replica = 1, behind = "500ms" }) end)
local r = exp:run()
lab.report(r)

local lww, vc = r.last_write_wins, r.vector_clocks
lab.check(lww.writes == vc.writes, "both variants took the same writes")
lab.expect(lww.lost_updates > lww.writes / 20, "last write wins silently lost over 5% of the writes",
           { headline = true })
lab.expect(vc.lost_updates == 0, "vector clocks lost none")
lab.expect(vc.conflicts_detected > vc.writes / 20 and lww.conflicts_detected == 0,
           "vector clocks detected the concurrent writes that last write wins cannot see")
lab.expect(vc.sibling_reads > 0 and vc.merges > 0, "readers saw siblings and writers merged them")
lab.expect(lww_sys:call("divergent_keys", {}) == 0 and vc_sys:call("divergent_keys", {}) == 0,
           "after the heal both converge: last write wins by throwing data away")
