-- From an in-memory queue to a partitioned, replicated log (Kafka's model), on identical records
-- in every variant. A record's key is the workload key; its processing takes the service time.
-- Three brokers, 6 partitions replicated on all three, 3 consumers, batches of 10, followers
-- 20 ms behind their leader (defaults).
--
-- 1. Replay. At 40 s a bug is found in what the consumers did since 20 s: rewind and process
--    again. The log still has the records (1 h of retention): 20 s x 200/s = 4000 +- 63 come
--    back. The queue deleted each message on its ack: nothing to replay. With 15 s of retention
--    only the last 15 s come back (~3000), the 5 s before are gone (~1000).
-- 2. Per-key order. 10 keys (30 records/s each), lognormal work. Partitioning by key keeps each key in one
--    partition read by one consumer: in order. Round-robin partitioning spreads a key over all
--    six partitions, consumed at different paces; the queue's competing consumers overtake each
--    other whenever a short message follows a long one of the same key.
-- 3. Consumer groups. 1000 records/s of 5 ms work: a consumer handles 200/s, so the group needs
--    5 or more; with 6 partitions, consumers beyond 6 get no partition. 9 consumers measure
--    exactly what 6 do (the same assignment); 3 fall behind for the whole run. The queue has no
--    such cap: 9 competing consumers all work.
-- 4. Rebalancing. A consumer joins at 10 s, consumer 1 crashes at 20 s (its session expires
--    3 s later) and rejoins at 30 s, consumer 0 leaves at 40 s: four rebalances of 1 s rounds.
--    Eager: each stops all 6 partitions (24 partition-seconds). Cooperative: only the
--    partitions that move, for two rounds, or one when their owner is gone (the script prints
--    the consumer lag every 2.5 s).
-- 5. Offset commits. A consumer crashes every 5 s (back after 1 s, before its session expires),
--    busy with batches of 10 at 90% load: committing at fetch skips the rest of the batch
--    (records never processed), committing after processing runs the processed part again.
-- 6. Leader crashes. Each broker dies once (15, 30, 45 s, for 5 s) at 1000 records/s. acks=1
--    loses what its followers had not copied: 333/s x 20 ms = 6.7 records per crash, 20 in all
--    (Poisson: none at all with probability e^-20). acks=all loses none.
-- 7. Unclean election. Broker 2 falls far behind (out of sync) at 5 s; broker 1 dies at 20 s
--    (acks=all writes now fail: 1 in-sync replica < min.insync 2); broker 0 dies at 30 s. Clean
--    election keeps 4 partitions offline until broker 0 is back at 40 s; unclean election
--    makes broker 2 their leader: every acknowledged record it lacks (5 .. 20 s) is lost.
local lab = require "hldlab"

local work = lab.lognormal{ median = "5ms", p99 = "20ms" }

-- 1 ------------------------------------------------------------------------------------------
local replay = lab.experiment{ name = "kafka_log: replay after a consumer bug", seed = 42,
                               duration = "60s" }
replay:workload{ arrivals = lab.poisson{ rps = 200 }, keys = lab.uniform{ n = 1000 }, service = work }
replay:add{ lesson = "kafka_log", variant = "in_memory_queue" }
replay:add{ lesson = "kafka_log", variant = "partitioned_log" }
replay:add{ lesson = "kafka_log", variant = "partitioned_log", label = "retention_15s",
            params = { retention = "15s" } }
replay:at("40s", function(sys) sys:call("replay", { from = "20s" }) end)
local a = replay:run()
lab.report(a)
lab.expect(a.partitioned_log.replayed > 3500 and a.partitioned_log.unrecoverable == 0
           and a.in_memory_queue.replayed == 0 and a.in_memory_queue.unrecoverable > 3500,
           "replay: the log re-reads the 20 s since the bug; the queue has nothing left",
           { headline = true })
lab.expect(a.retention_15s.replayed > 2500 and a.retention_15s.unrecoverable > 700
           and a.retention_15s.replayed + a.retention_15s.unrecoverable
               == a.partitioned_log.replayed,
           "retention bounds it: with 15 s kept, the first 5 s of the window are gone")

-- 2 ------------------------------------------------------------------------------------------
local order = lab.experiment{ name = "kafka_log: per-key order", seed = 42, duration = "60s" }
order:workload{ arrivals = lab.poisson{ rps = 300 }, keys = lab.uniform{ n = 10 }, service = work }
for _, v in ipairs{ "in_memory_queue", "round_robin", "partitioned_log" } do
  order:add{ lesson = "kafka_log", variant = v }
end
local b = order:run()
lab.report(b)
-- Seeds 1-100: round robin 1144-1341 records out of order, the queue 721-840.
lab.expect(b.partitioned_log.out_of_order == 0 and b.round_robin.out_of_order > 800
           and b.in_memory_queue.out_of_order > 100,
           "partitioning by key keeps each key in order; round robin and competing consumers do not")

-- 3 ------------------------------------------------------------------------------------------
local group = lab.experiment{ name = "kafka_log: consumers vs partitions", seed = 42,
                              duration = "30s" }
group:workload{ arrivals = lab.poisson{ rps = 1000 }, keys = lab.uniform{ n = 10000 },
                service = "5ms" }
for _, n in ipairs{ 3, 6, 9 } do
  group:add{ lesson = "kafka_log", variant = "partitioned_log", label = "consumers_" .. n,
             params = { consumers = n } }
end
group:add{ lesson = "kafka_log", variant = "in_memory_queue", label = "queue_9",
           params = { consumers = 9 } }
local g = group:run()
lab.report(g)
lab.expect(g.consumers_9.idle_consumers == 3 and g.consumers_9.lag_p99 == g.consumers_6.lag_p99
           and g.consumers_9.lag_max == g.consumers_6.lag_max,
           "6 partitions: a 7th, 8th and 9th consumer sit idle, the group is no faster")
lab.expect(g.consumers_3.lag_max > 10 and g.consumers_6.lag_max < 1,
           "3 consumers fall behind for the whole run, 6 keep up")
lab.expect(g.queue_9.lag_p99 < g.consumers_9.lag_p99,
           "competing consumers on a queue use all 9")

-- 4 ------------------------------------------------------------------------------------------
local churn = lab.experiment{ name = "kafka_log: rebalancing", seed = 42, duration = "60s" }
churn:workload{ arrivals = lab.poisson{ rps = 300 }, keys = lab.uniform{ n = 1000 }, service = work }
churn:add{ lesson = "kafka_log", variant = "eager_rebalance" }
churn:add{ lesson = "kafka_log", variant = "partitioned_log" }
churn:at("10s", function(sys) sys:call("add_consumer", {}) end)
churn:at("20s", function(sys) sys:inject("crash_consumer", { consumer = 1, duration = "10s" }) end)
churn:at("40s", function(sys) sys:call("remove_consumer", { consumer = 0 }) end)
local lags = { eager_rebalance = {}, partitioned_log = {} }
for t = 2.5, 57.5, 2.5 do
  churn:at(t, function(sys) table.insert(lags[sys.label], sys:call("status", {}).lag) end)
end
local d = churn:run()
lab.report(d)
print("records behind the committed offsets, every 2.5 s from 2.5 s")
for _, v in ipairs{ "eager_rebalance", "partitioned_log" } do
  local line = string.format("%-16s", v)
  for _, n in ipairs(lags[v]) do line = line .. string.format("%5d", n) end
  print(line)
end
local eager, coop = d.eager_rebalance, d.partitioned_log
lab.expect(eager.rebalances == 4 and eager.rebalance_pause == 4 * 6 * 1,
           "eager: each of the 4 rebalances stops all 6 partitions for a 1 s round")
lab.expect(coop.rebalance_pause <= eager.rebalance_pause / 2,
           "cooperative: only the partitions that move pause: half the partition-seconds or less")
lab.check(eager.consumed == eager.produced and coop.consumed == coop.produced,
          "every record consumed")

-- 5 ------------------------------------------------------------------------------------------
local commits = lab.experiment{ name = "kafka_log: consumers crash mid-batch", seed = 42,
                                duration = "60s" }
commits:workload{ arrivals = lab.poisson{ rps = 450 }, keys = lab.uniform{ n = 1000 },
                  service = "6ms" }
commits:add{ lesson = "kafka_log", variant = "commit_before" }
commits:add{ lesson = "kafka_log", variant = "partitioned_log" }
for i = 1, 11 do
  commits:at(i * 5, function(sys) sys:inject("crash_consumer", { consumer = i % 3, duration = "1s" }) end)
end
local e = commits:run()
lab.report(e)
lab.expect(e.commit_before.skipped > 0 and e.commit_before.duplicates == 0
           and e.partitioned_log.skipped == 0 and e.partitioned_log.duplicates > 0,
           "commit before processing skips records (at most once); after, re-reads them (at least once)")
lab.check(e.commit_before.consumed + e.commit_before.skipped == e.commit_before.produced
          and e.partitioned_log.consumed == e.partitioned_log.produced,
          "every record is consumed or skipped")

-- 6 ------------------------------------------------------------------------------------------
local leaders = lab.experiment{ name = "kafka_log: each broker crashes once", seed = 42,
                                duration = "60s" }
leaders:workload{ arrivals = lab.poisson{ rps = 1000 }, keys = lab.uniform{ n = 10000 },
                  service = "1ms" }
leaders:add{ lesson = "kafka_log", variant = "acks_1" }
leaders:add{ lesson = "kafka_log", variant = "partitioned_log" }
for b = 0, 2 do
  leaders:at(15 * (b + 1), function(sys) sys:inject("crash_broker", { broker = b, duration = "5s" }) end)
end
local f = leaders:run()
lab.report(f)
lab.expect(f.acks_1.acked_lost > 0 and f.partitioned_log.acked_lost == 0,
           "acks=1 loses acknowledged writes at each leader crash; acks=all none")
lab.expect(f.partitioned_log.p50 > 10 * f.acks_1.p50,
           "acks=all pays the followers' replication lag on every write")

-- 7 ------------------------------------------------------------------------------------------
local unclean = lab.experiment{ name = "kafka_log: unclean leader election", seed = 42,
                                duration = "60s" }
unclean:workload{ arrivals = lab.poisson{ rps = 1000 }, keys = lab.uniform{ n = 10000 },
                  service = "1ms" }
unclean:add{ lesson = "kafka_log", variant = "unclean_election" }
unclean:add{ lesson = "kafka_log", variant = "partitioned_log" }
unclean:at("5s", function(sys) sys:inject("slow_broker", { broker = 2, factor = 1000, duration = "1h" }) end)
unclean:at("20s", function(sys) sys:inject("crash_broker", { broker = 1, duration = "1h" }) end)
unclean:at("30s", function(sys) sys:inject("crash_broker", { broker = 0, duration = "10s" }) end)
local u = unclean:run()
lab.report(u)
lab.expect(u.unclean_election.acked_lost > 5000 and u.partitioned_log.acked_lost == 0,
           "unclean election: an out-of-sync replica leads and acknowledged records vanish")
lab.expect(u.partitioned_log.errors > u.unclean_election.errors,
           "clean election pays in availability instead: offline until an in-sync replica returns")
