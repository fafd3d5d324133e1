-- Capstone: an API dying at 10k RPS.
--
-- The API has 10 workers and 10 ms of work per request: about 1000 rps of capacity. It is hit
-- by 10 000 rps from 10 clients. Without a limiter every request joins the queue: the queue
-- grows by 9000 a second, within a second the wait passes the clients' 5 s timeout, and from
-- then on the API works hard for clients who have left. With a per-client limit of 90 rps
-- (900 rps in all, 90% of capacity) the excess gets a 429 with a retry-after at once, and the
-- accepted traffic keeps a P99 of tens of milliseconds with a token bucket or GCRA (burst 10).
-- Window counters let a client's whole quota in at once: the fixed window admits 900 requests
-- at the start of every second and its P99 pays for it. At 10 s the limiter's store restarts
-- (fault limiter_state_lost): every client gets a fresh quota, a burst, then steady again.
local lab = require "hldlab"

local exp = lab.experiment{ name = "capstone: an API at 10x its capacity", seed = 42, duration = "20s" }
exp:workload{ arrivals = lab.poisson{ rps = 10000 }, clients = 10,
              service = lab.exponential{ mean = "10ms" } }
for _, v in ipairs{ "none", "fixed_window", "sliding_window", "token_bucket", "gcra" } do
  exp:add{ lesson = "rate_limiting", variant = v,
           params = { limit = 90, burst = 10, capacity = 10, timeout = "5s" } }
end
exp:at("10s", function(sys) sys:inject("limiter_state_lost", {}) end)
local r = exp:run()
lab.report(r)

lab.expect(r.none.queue_max > 50000, "no limiter: the queue explodes (tens of thousands waiting)")
lab.expect(r.none.ok_p99 > 2, "no limiter: even the requests served in time waited seconds (P99)")
lab.expect(r.none.timeouts > r.none.requests / 2, "no limiter: most clients time out")
for _, v in ipairs{ "fixed_window", "sliding_window", "token_bucket", "gcra" } do
  lab.expect(r[v].timeouts == 0, v .. ": no accepted request times out")
  lab.expect(r[v].rejected > r[v].requests * 0.85, v .. ": the excess (~91%) gets a 429")
  lab.expect(r[v].ok > 2 * r.none.ok, v .. ": serves more than twice as many requests in time")
end
for _, v in ipairs{ "token_bucket", "gcra" } do
  lab.expect(r[v].ok_p99 < 0.25, v .. ": the accepted traffic keeps a P99 under 250 ms")
end
lab.expect(r.fixed_window.ok_p99 > 3 * r.token_bucket.ok_p99,
           "fixed window: a whole quota at every window start, a P99 several times the bucket's")
lab.expect(r.token_bucket.retry_after_mean < 0.2,
           "a 429 from the token bucket says: retry within a token interval or so")
