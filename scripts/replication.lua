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
-- Theory (README): E[max] / E[min] of the two replicas' lags = 123.7 / 39.5 ms = 3.1. With a lag
-- held for 1 s the script averages ~60 draws per replica: the ratio's log has a standard
-- deviation of 0.15 over seeds (2.1 to 9.3 on 2 000 seeds, 1.9 on seed 9876543236), so the
-- claim asks for 1.5.
lab.expect(r.sync.write_ms > 1.5 * r.semi_sync.write_ms,
           string.format("sync pays the slowest replica's lag: %.0f ms per write against %.0f ms "
                         .. "(theory: 3.1x)", r.sync.write_ms, r.semi_sync.write_ms))

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

-- Part 3: the same claims checked independently, from what clients saw. Each system records a
--         history (every read and write: client, key, version, invocation and completion
--         times) and lab.check_linearizable searches it for a linearization, key by key
--         (Wing & Gong's search with Lowe's memoisation). Reads from replicas are not
--         linearizable, asynchronous or synchronous: a synchronous write is applied by one
--         replica before another, so one client reads the new version and, after it, another
--         client reads the old one from the other replica. Reads from the leader that see only
--         committed entries are linearizable, whatever the replication, until the leader
--         crashes: async then loses acknowledged writes (a read after the failover returns a
--         version older than one acknowledged before it), semi-sync and sync lose none.
-- 40 keys: a synchronous write lasts up to the slowest replica's lag (P99 500 ms), and the
-- search for a linearization grows with the writes of one key in flight together (2^n orders
-- at worst); with 1.25 writes per key and second it stays small (with 20 keys one key of one
-- seed in about 400 exceeded the checker's search bound: verdict unknown).
local lin_traffic = {
  arrivals = lab.poisson{ rps = 500 },
  keys = lab.uniform{ n = 40 },
  clients = 100,
  writes = 0.1,
  service = "1ms",
}
local lin = lab.experiment{ name = "replication: linearizability", seed = 42, duration = "10s" }
lin:workload(lin_traffic)
local systems = {}
for _, v in ipairs{ "async_replica_reads", "sync" } do
  systems[v] = lin:add{ lesson = "replication", variant = v, history = true }
  systems[v .. "_leader"] = lin:add{ lesson = "replication", variant = v, label = v .. "_leader",
                                     params = { read_from = "leader" }, history = true }
end
lin:run()
local async_replicas = lab.check_linearizable(systems.async_replica_reads)
lab.expect(async_replicas.verdict == "invalid",
           "checker: reads from async replicas are not linearizable (witness printed above)")
lab.expect(lab.check_linearizable(systems.sync).verdict == "invalid",
           "checker: reads from sync replicas are not linearizable either (new, then old)")
lab.expect(lab.check_linearizable(systems.async_replica_reads_leader).valid and
           lab.check_linearizable(systems.sync_leader).valid,
           "checker: reads of the leader's committed entries are linearizable, async or sync")

local lin_crash = lab.experiment{ name = "replication: linearizability across failovers", seed = 42,
                                  duration = "10s" }
lin_crash:workload(lin_traffic)
local crashed = {}
for _, v in ipairs{ "async_replica_reads", "semi_sync", "sync" } do
  crashed[v] = lin_crash:add{ lesson = "replication", variant = v, history = true,
                              params = { read_from = "leader", lag_median = "200ms" } }
end
-- Each crash loses the writes of the last ~200 ms the promoted replica lacks (about 50 writes a
-- second: several per crash); a read of the key before it is written again shows it.
for _, t in ipairs{ "3s", "5.5s", "8s" } do
  lin_crash:at(t, function(sys) sys:inject("crash_leader", {}) end)
end
lin_crash:run()
lab.expect(lab.check_linearizable(crashed.async_replica_reads).verdict == "invalid",
           "checker: async loses acknowledged writes at failover: not linearizable")
lab.expect(lab.check_linearizable(crashed.semi_sync).valid and
           lab.check_linearizable(crashed.sync).valid,
           "checker: semi-sync and sync stay linearizable across failovers")
