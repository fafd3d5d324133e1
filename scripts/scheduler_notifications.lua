-- Scheduled notifications: who fires the jobs, and how they reach the providers.
--
-- Part 1, the schedulers: 100 reminders/s for 60 s, each due uniform(0, 30 s) later; ticks
-- every second; a provider that accepts everything (so only the schedulers matter). Node 0
-- crashes at 20 s for 15 s; at 45 s a node is paused for 10 s (a GC or VM pause: node 1 of
-- the multi-node variants, the single cron box itself).
--   single_cron    one box: it skips the ticks it was down for; what was due then is missed
--   two_crons      two boxes with the same crontab: every job fires twice (once during node
--                  0's outage)
--   leased_shards  12 shards, 3 nodes, 5 s leases renewed every second: a dead node's shards
--                  are taken over when their lease expires and fired from where they stopped;
--                  the paused node wakes up believing it still owns its shards, and the fencing
--                  token makes the jobs table refuse its fires
--   no_fencing     leased_shards without the token check: the paused node fires again
-- Theory: due times have density 100 x t / 30 per second up to 30 s, 100 after. The crash
-- (before tick 20) and the restart (before tick 35) skip the ticks 20 .. 34, the jobs due in
-- (19 s, 34 s]: 100 x ((30^2 - 19^2) / 60 + 4) = 1298 expected (Poisson, sd 36). A takeover comes at most lease + renew_every after the
-- last renewal, and the next tick fires it: no job is later than 5 + 1 + 1 s.
--
-- Part 2, the pipeline: 100 notifications/s to send now, over 2 providers that accept 100/s
-- each (burst 20), fail 2% of sends (5xx) and answer in 50 ms (median; P99 500 ms). A spike
-- of 300/s for 4 s at 15 s; provider 1 is down for 5 s at 30 s; provider 0 is 10x slower for
-- 5 s at 45 s (the sender times out after 1 s).
--   leased_shards    the caller waits for the provider: 429s in the spike, 5xx, the outage:
--                    lost; a slow provider blocks the callers
--   queued_pipeline  answered once queued; 90 sends/s per provider (below the limit); retries
--                    with full-jitter backoff (0.5 s base, 30 s cap), dead-letter queue after 6
--                    attempts. At-least-once: a send that timed out after the provider took it
--                    is retried and delivered twice.
local lab = require "hldlab"

local perfect = { provider_rate = 1e6, provider_burst = 1e6, provider_failure = 0,
                  provider_latency_median = "10ms", provider_latency_p99 = "10ms",
                  scheduled_share = 1 }
local function with(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local exp = lab.experiment{ name = "scheduler_notifications: schedulers, a crash and a pause",
                            seed = 42, duration = "60s" }
exp:workload{ arrivals = lab.poisson{ rps = 100 } }
local systems = {
  exp:add{ lesson = "scheduler_notifications", variant = "single_cron", params = perfect },
  exp:add{ lesson = "scheduler_notifications", variant = "two_crons", params = perfect },
  exp:add{ lesson = "scheduler_notifications", variant = "leased_shards", params = perfect },
  exp:add{ lesson = "scheduler_notifications", variant = "leased_shards", label = "no_fencing",
           params = with(perfect, { fencing = false }) },
}
exp:at("20s", function(sys) sys:inject("crash", { node = 0, duration = "15s" }) end)
for _, sys in ipairs(systems) do
  sys:at("45s", function(s)
    s:inject("pause", { node = s.variant == "single_cron" and 0 or 1, duration = "10s" })
  end)
end
local r = exp:run()
lab.report(r)

local one, two, leased, unfenced = r.single_cron, r.two_crons, r.leased_shards, r.no_fencing
local expected_missed = 100 * ((30 ^ 2 - 19 ^ 2) / 60 + 4)
print(string.format("missed by the cron box: %d (theory %.0f +- %.0f)", one.missed, expected_missed,
                    math.sqrt(expected_missed)))
lab.check(one.notifications == leased.notifications and two.notifications == leased.notifications,
          "every variant got the same reminders")
lab.expect(one.missed > 0 and leased.missed == 0 and leased.fired_twice == 0,
           string.format("jobs missed while the scheduler was down: %d with one cron box -> 0 with leased shards",
                         one.missed), { headline = true })
lab.expect(math.abs(one.missed - expected_missed) < 5 * math.sqrt(expected_missed),
           "the cron box misses exactly the jobs due during its outage (theory within 5 sd)")
lab.expect(two.missed == 0 and two.fired_twice == two.notifications - one.missed,
           "two cron boxes miss nothing but fire every job twice, except those due while one was down")
lab.expect(leased.takeovers >= 4 and leased.fire_delay_max <= 7,
           string.format("leased shards: the dead node's shards are taken over; no job later than lease + renew + tick (%.1f s)",
                         leased.fire_delay_max))
lab.expect(unfenced.fired_twice > 0 and leased.fenced == unfenced.fired_twice,
           "the node paused past its lease fires its old shards again; the fencing token refuses exactly those fires")

-- Part 2: the sending pipeline.
local pipe = lab.experiment{ name = "scheduler_notifications: sending to rate-limited providers",
                             seed = 42, duration = "60s" }
pipe:workload{ arrivals = lab.poisson{ rps = 100, spikes = { { at = "15s", duration = "4s", rps = 300 } } } }
for _, v in ipairs{ "leased_shards", "queued_pipeline" } do
  pipe:add{ lesson = "scheduler_notifications", variant = v, params = { scheduled_share = 0 } }
end
pipe:at("30s", function(sys) sys:inject("provider_outage", { provider = 1, duration = "5s" }) end)
pipe:at("45s", function(sys) sys:inject("slow_provider", { provider = 0, factor = 10, duration = "5s" }) end)
local p = pipe:run()
lab.report(p)

local sync, queue = p.leased_shards, p.queued_pipeline
lab.check(sync.notifications == queue.notifications, "both pipelines got the same notifications")
lab.expect(sync.lost > 0.02 * sync.notifications and queue.lost == 0,
           string.format("synchronous sends lose %d notifications (429, 5xx, outage); the queue loses none",
                         sync.lost))
lab.expect(sync.rate_limited > 0 and queue.rate_limited == 0,
           "the spike runs into the providers' limits; paced below them, the queue never gets a 429")
lab.expect(queue.delivered + queue.dead_lettered >= queue.notifications and queue.dead_lettered < 0.01 * queue.notifications,
           "every queued notification is delivered or in the dead-letter queue (under 1%)")
lab.expect(sync.p99 > 100 * queue.p99,
           string.format("synchronous callers wait for the provider (P99 %.0f ms); queued ones are answered in %.0f ms",
                         1000 * sync.p99, 1000 * queue.p99))
lab.expect(queue.duplicates > 0 and queue.duplicates <= queue.retries,
           "at-least-once: sends that timed out after the provider took them are retried and delivered twice")
