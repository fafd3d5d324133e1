-- Replication: a leader with asynchronous replicas, and the fixes, on identical traffic.
--
-- Part 1: 1000 clients write 10% of the time and read the rest from the replicas. The
--         replicas lag the leader (lognormal, median 50 ms, P99 500 ms), so a client often
--         reads a version older than its own acknowledged write (stale read) and, bouncing
--         between replicas, sees versions go back in time (non-monotonic). Reading from the
--         leader while the chosen replica lacks the client's last write (its log position)
--         removes stale reads; pinning a client to one replica
--         removes non-monotonic reads; synchronous replication removes stale reads too, but
--         every write waits for the slowest replica.
-- Part 2: the leader crashes three times; a replica is promoted 2 s later. Async replication
--         loses the acknowledged writes the promoted replica had not applied yet; semi-sync
--         and sync lose none.
local lab = require "hldlab"

local traffic = {
  arrivals = lab.poisson{ rps = 1000 },
  keys = lab.uniform{ n = 5 },
  clients = 1000,
  writes = 0.1,
  service = "1ms",
}

local exp = lab.experiment{ name = "replication: reading from replicas", seed = 42, duration = "60s" }
exp:workload(traffic)
for _, v in ipairs{ "async_replica_reads", "read_your_writes", "monotonic_reads", "semi_sync", "sync" } do
  exp:add{ lesson = "replication", variant = v }
end
local r = exp:run()
lab.report(r)
lab.expect(r.async_replica_reads.stale_reads > 0, "async replicas: clients miss their own writes")
lab.expect(r.read_your_writes.stale_reads == 0, "reading from the leader after a write: no stale read")
lab.expect(r.sync.stale_reads == 0, "synchronous replication: no stale read from any replica")
lab.expect(r.async_replica_reads.non_monotonic > 0, "async replicas: reads go back in time")
lab.expect(r.monotonic_reads.non_monotonic == 0, "one replica per client: reads never go back")
lab.expect(r.semi_sync.write_ms > 10 * r.async_replica_reads.write_ms,
           "semi-sync pays the fastest replica's lag on every write")
lab.expect(r.sync.write_ms > 2 * r.semi_sync.write_ms, "sync pays the slowest replica's lag")

local crash = lab.experiment{ name = "replication: leader crashes", seed = 42, duration = "60s" }
crash:workload(traffic)
for _, v in ipairs{ "async_replica_reads", "semi_sync", "sync" } do
  local sys = crash:add{ lesson = "replication", variant = v, params = { lag_median = "100ms" } }
  -- Around the first crash, for the report's space-time diagram (--report).
  sys:trace{ from = "14.8s", to = "15.3s" }
end
for _, t in ipairs{ "15s", "30s", "45s" } do
  crash:at(t, function(sys) sys:inject("crash_leader", {}) end)
end
local c = crash:run()
lab.report(c)
lab.expect(c.async_replica_reads.lost_writes > 0, "async: acknowledged writes lost at failover")
lab.expect(c.semi_sync.lost_writes == 0, "semi-sync: every acked write is on the promoted replica")
lab.expect(c.sync.lost_writes == 0, "sync: no acked write lost either")
