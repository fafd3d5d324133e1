-- The dual write: an order service stores each order in its database and publishes an
-- OrderPlaced event to a broker. 200 orders/s for 60 s, transactions lognormal (median 5 ms,
-- P99 30 ms), the same orders and the same faults for every variant:
--   10 s      the order service crashes (back after 1 s)
--   20-30 s   5% of commits fail (deadlocks, constraint violations)
--   40-42 s   the broker is down
--   50.505 s  the outbox relay / CDC connector crashes (back after 1 s): 5 ms into the relay's
--             batch (it polls every 100 ms from 0, publishing one row per millisecond)
-- write_then_publish loses the event of every order that commits while the broker is down
-- (200/s x 2 s: 400 +- 20, Poisson) and of any caught publishing at the crash; publish_then_write
-- leaves a phantom event for every failed commit (5% of 2000: 100 +- 10) and for any caught
-- committing at the crash. The outbox and CDC never disagree, and publish at least once.
local lab = require "hldlab"

local exp = lab.experiment{ name = "outbox: crash, failed commits, broker outage, relay crash",
                            seed = 42, duration = "60s" }
exp:workload{ arrivals = lab.poisson{ rps = 200 },
              service = lab.lognormal{ median = "5ms", p99 = "30ms" } }
local variants = { "write_then_publish", "publish_then_write", "transactional_outbox", "cdc" }
for _, v in ipairs(variants) do
  exp:add{ lesson = "outbox", variant = v }
end
exp:at("10s", function(sys) sys:inject("crash_service", { duration = "1s" }) end)
exp:at("20s", function(sys) sys:inject("db_errors", { rate = 0.05, duration = "10s" }) end)
exp:at("40s", function(sys) sys:inject("broker_down", { duration = "2s" }) end)
exp:at("50.505s", function(sys)  -- only the two variants with a relay have one to crash
  if sys.variant == "transactional_outbox" or sys.variant == "cdc" then
    sys:inject("crash_relay", { duration = "1s" })
  end
end)
local r = exp:run()
lab.report(r)

local w, p, o, c = r.write_then_publish, r.publish_then_write, r.transactional_outbox, r.cdc
print(string.format("orders whose database and event stream disagree: %d, %d -> %d, %d",
                    w.inconsistent, p.inconsistent, o.inconsistent, c.inconsistent))
lab.expect(w.inconsistent > 300 and p.inconsistent > 50 and o.inconsistent == 0
           and c.inconsistent == 0,
           "dual writes leave hundreds of orders and events disagreeing; outbox and CDC none",
           { headline = true })
lab.expect(w.lost_events > 300 and w.phantom_events == 0,
           "write then publish: committed orders whose event is lost (broker down, crash)")
lab.expect(p.phantom_events > 50 and p.lost_events == 0,
           "publish then write: events for orders that were never committed")
lab.expect(o.committed == o.events and c.committed == c.events
           and o.committed == w.committed,
           "outbox and CDC: every committed order has its event, even across the broker outage")
lab.expect(o.duplicates > 0 and c.duplicates > 0,
           "both publish at least once: a relay or connector crash republishes (consumers dedupe)")
lab.expect(c.event_delay_p50 < o.event_delay_p50 / 2,
           "CDC tails the log: its events come sooner than the relay's polling")
for _, v in ipairs(variants) do
  lab.check(r[v].inconsistent == r[v].lost_events + r[v].phantom_events,
            v .. ": inconsistent = lost + phantom")
  lab.check(r[v].completed == r[v].requests, v .. ": every order answered")
end
