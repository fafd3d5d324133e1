-- Message queues: an order service and three downstream services (email, inventory, analytics),
-- on identical orders in every variant. A downstream's work per order is the workload's service
-- time (lognormal, median 10 ms, P99 50 ms); each service has 4 consumers.
--
-- Part 1: the synchronous chain against a queue. Analytics is 10x slower from 15 s to 25 s,
--         email is down from 35 s to 45 s. The chain's users wait for all three calls and lose
--         their order whenever one of them fails or times out (1 s); with a queue they wait for
--         the publish only, and email just catches up after its outage.
-- Part 2: availability is a product: every service fails 2% of its calls. The chain succeeds
--         only when all three do: 0.98^3 = 94.1%, within 5 standard deviations (binomial).
-- Part 3: delivery guarantees. A service's consumers crash every 5 s (for 1 s, each service in
--         turn). Acks take 10 ms to reach the broker. At most once acked on delivery: every
--         message being processed at a crash is lost. At least once acks after processing: those
--         are redelivered, and the ones processed whose ack was on its way run twice. A dedupe
--         table (effectively once) turns those redeliveries into no-ops.
-- Part 4: poison. At 10 s four orders carry an inventory message nobody can process. Retried in
--         place forever they pin the four inventory consumers: the inventory queue stops. With
--         5 attempts and a dead-letter queue they are parked and the queue flows.
-- Part 5: backpressure. Orders jump from 100/s to 600/s for 20 s (the consumers serve ~315/s).
--         The unbounded queue takes everything: depth and lag grow for as long as the spike
--         lasts. Bounded at 500 messages per queue, the producer backs off (then fails) or sheds;
--         autoscaling (a consumer per 10 messages of backlog, 3 s to start) catches up.
local lab = require "hldlab"

local service = lab.lognormal{ median = "10ms", p99 = "50ms" }

-- Part 1 -------------------------------------------------------------------------------------
local chain = lab.experiment{ name = "message_queue: sync chain vs queue", seed = 42,
                              duration = "60s" }
chain:workload{ arrivals = lab.poisson{ rps = 100 }, service = service }
for _, v in ipairs{ "sync_chain", "at_least_once", "effectively_once" } do
  chain:add{ lesson = "message_queue", variant = v }
end
chain:at("15s", function(sys)
  sys:inject("slow_service", { service = "analytics", factor = 10, duration = "10s" })
end)
chain:at("35s", function(sys) sys:inject("crash_service", { service = "email", duration = "10s" }) end)
local c = chain:run()
lab.report(c)
local function availability(s) return s.ok / s.requests end
local sync, queue = c.sync_chain, c.effectively_once
print(string.format("order availability: sync chain %.1f%%, queue %.1f%%; order P99 %.0f ms -> %.1f ms",
                    100 * availability(sync), 100 * availability(queue), sync.p99 * 1e3, queue.p99 * 1e3))
lab.expect(sync.p99 > 100 * queue.p99 and availability(sync) < 0.85 and availability(queue) == 1,
           "a queue instead of the sync chain: order P99 100x lower, every order accepted",
           { headline = true })
lab.expect(sync.timeouts > 100, "the slow analytics service times out chained orders")
-- 10 s of email outage at 100 orders/s: 1000 +- 32 orders (Poisson) find it down.
lab.expect(sync.errors > 800, "email down for 10 s fails every chained order meanwhile")
lab.expect(queue.wait_max > 9, "with a queue, email lags by its outage instead")
lab.expect(queue.processed == queue.published and queue.stuck == 0,
           "and catches up: every message processed in the end")

-- Part 2 -------------------------------------------------------------------------------------
local flaky = lab.experiment{ name = "message_queue: every service fails 2% of calls", seed = 42,
                              duration = "30s" }
flaky:workload{ arrivals = lab.poisson{ rps = 200 }, service = service }
for _, v in ipairs{ "sync_chain", "at_least_once" } do
  flaky:add{ lesson = "message_queue", variant = v }
end
flaky:at(0, function(sys)
  for _, s in ipairs{ "email", "inventory", "analytics" } do
    sys:inject("service_errors", { service = s, rate = 0.02, duration = "1h" })
  end
end)
local f = flaky:run()
lab.report(f)
local product = 0.98 ^ 3
local measured = availability(f.sync_chain)
local sigma = math.sqrt(product * (1 - product) / f.sync_chain.requests)
print(string.format("sync chain availability %.2f%%, product of the three %.2f%% (sd %.2f%%)",
                    100 * measured, 100 * product, 100 * sigma))
lab.expect(math.abs(measured - product) < 5 * sigma,
           "the chain's availability is the product of its services': 98% x 98% x 98% = 94.1%")
lab.expect(availability(f.at_least_once) == 1 and f.at_least_once.retries > 0,
           "the queue retries the failed messages: every order succeeds")

-- Part 3 -------------------------------------------------------------------------------------
local crash = lab.experiment{ name = "message_queue: consumers crash every 5 s", seed = 42,
                              duration = "60s" }
crash:workload{ arrivals = lab.poisson{ rps = 200 }, service = service }
for _, v in ipairs{ "at_most_once", "at_least_once", "effectively_once" } do
  crash:add{ lesson = "message_queue", variant = v, params = { ack_delay = "10ms" } }
end
local services = { "email", "inventory", "analytics" }
for i = 1, 11 do
  crash:at(i * 5, function(sys)
    sys:inject("crash_service", { service = services[i % 3 + 1], duration = "1s" })
  end)
end
local d = crash:run()
lab.report(d)
local amo, alo, eo = d.at_most_once, d.at_least_once, d.effectively_once
lab.expect(amo.lost > 0 and amo.lost == amo.crash_in_flight,
           "at most once: every message a consumer held at a crash is lost, exactly")
lab.expect(alo.lost == 0 and alo.redelivered == alo.crash_in_flight and alo.duplicates > 0,
           "at least once: all of them come back; those already processed run twice")
lab.expect(eo.duplicates == 0 and eo.lost == 0 and eo.dedupe_hits == alo.duplicates,
           "effectively once: the dedupe table skips exactly at-least-once's duplicates")
lab.check(eo.processed == eo.published and alo.processed == alo.published,
          "every message processed once (effectively once) or at least once")

-- Part 4 -------------------------------------------------------------------------------------
local poison = lab.experiment{ name = "message_queue: four poison messages at 10 s", seed = 42,
                               duration = "30s", drain = "5s" }
poison:workload{ arrivals = lab.poisson{ rps = 100 }, service = service }
for _, v in ipairs{ "at_most_once", "at_least_once", "dead_letter" } do
  poison:add{ lesson = "message_queue", variant = v }
end
poison:at("10s", function(sys) sys:inject("poison", { service = "inventory", count = 4 }) end)
local p = poison:run()
lab.report(p)
lab.expect(p.at_least_once.stuck > 1500,
           "retry forever: four poison messages pin the four inventory consumers, the queue stops")
lab.expect(p.dead_letter.dead_lettered == 4 and p.dead_letter.stuck == 0,
           "max attempts + a dead-letter queue: the four are parked, nothing is stuck")
lab.expect(p.at_most_once.lost == 4, "at most once drops them (and would drop any failure)")

-- Part 5 -------------------------------------------------------------------------------------
local spike = lab.experiment{ name = "message_queue: 600 orders/s for 20 s", seed = 42,
                              duration = "60s" }
spike:workload{ arrivals = lab.poisson{ rps = 100, spikes = { { at = "10s", duration = "20s", rps = 600 } } },
                service = service }
local overload = { "at_least_once", "bounded_backoff", "load_shedding", "autoscaling" }
for _, v in ipairs(overload) do
  spike:add{ lesson = "message_queue", variant = v,
             params = { queue_limit = 500, scale_interval = "2s", consumer_startup = "3s" } }
end
local timeline = {}
for t = 5, 55, 5 do
  spike:at(t, function(sys)
    timeline[sys.label] = timeline[sys.label] or {}
    table.insert(timeline[sys.label], sys:call("queues", {}))
  end)
end
local s = spike:run()
lab.report(s)
print("messages waiting in the three queues, every 5 s (inventory's lag in seconds)")
local header = "                 "
for t = 5, 55, 5 do header = header .. string.format("%8s", t .. "s") end
print(header)
for _, v in ipairs(overload) do
  local depths, lags = string.format("%-17s", v), string.format("%-17s", "")
  for _, q in ipairs(timeline[v]) do
    depths = depths .. string.format("%8d", q.depth)
    lags = lags .. string.format("%8.1f", q.inventory.lag)
  end
  print(depths)
  print(lags)
end
local unbounded = s.at_least_once
lab.expect(unbounded.peak_depth > 10000 and unbounded.wait_max > 10,
           "unbounded: over 10 000 messages pile up, waiting over 10 s")
lab.expect(s.load_shedding.peak_depth <= 1500 and s.load_shedding.rejected > 2000
           and s.load_shedding.wait_max < unbounded.wait_max / 5,
           "bounded + load shedding: the queues stop at their limit, excess orders get a fast 503")
lab.expect(s.bounded_backoff.peak_depth <= 1500 and s.bounded_backoff.publish_retries > 1000
           and s.bounded_backoff.p99 > 0.5,
           "bounded + producer backoff: the pressure reaches the order service (slow orders)")
lab.expect(s.autoscaling.peak_depth < unbounded.peak_depth / 2
           and s.autoscaling.rejected == 0 and s.autoscaling.peak_consumers > 4,
           "autoscaling on the backlog: more consumers, half the peak depth, nothing refused")
for _, v in ipairs(overload) do
  lab.check(s[v].processed == s[v].published and s[v].lost == 0,
            v .. ": every accepted message processed")
end
