-- Rate limiting: every algorithm on identical traffic.
--
-- Part 1: one client sends 1000 rps from 0.5 s to 2 s against a limit of 100 per second.
--         The fixed window accepts 100 at the end of window 0 and 100 at the start of window 1:
--         twice the limit inside 0.6 s. The sliding log never lets more than 100 into any
--         1-second interval; the token bucket and GCRA pass their burst then the steady rate
--         (and decide identically); the leaky bucket queues its burst and releases it steadily.
-- Part 2: 20 clients offer 4000 rps to an API of 2000 rps (20 workers, 10 ms each); each client
--         may send 80 rps. At 5 s a quarter of the workers die (fault kill_workers) for 2 s and the
--         limiter's store restarts (fault limiter_state_lost). Without a limiter the queue and
--         P99 explode and requests time out; with one, accepted traffic stays served in time.
local lab = require "hldlab"

local limit, burst = 100, 20
local boundary = lab.experiment{ name = "rate_limiting: window boundary", seed = 7, duration = "3s" }
boundary:workload{
  arrivals = lab.constant{ rps = 0, spikes = { { at = "0.5s", duration = "1.5s", rps = 1000 } } },
  clients = 1,
  service = "1ms",
}
local systems = {}
for _, v in ipairs{ "none", "fixed_window", "sliding_log", "sliding_window", "token_bucket",
                    "leaky_bucket", "gcra" } do
  systems[v] = boundary:add{ lesson = "rate_limiting", variant = v,
                             params = { limit = limit, window = "1s", burst = burst } }
end
local headers = {}
boundary:at("0.7s", function()
  headers.fixed = systems.fixed_window:call("headers", { client = 0 })
  headers.log = systems.sliding_log:call("headers", { client = 0 })
end)
local b = boundary:run()
lab.report(b)
print(string.format("headers at 0.7 s  fixed_window: remaining %d, retry_after %.3f s   " ..
                    "sliding_log: remaining %d, retry_after %.3f s",
                    headers.fixed.remaining, headers.fixed.retry_after,
                    headers.log.remaining, headers.log.retry_after))
lab.check(b.none.accepted == b.none.requests, "no limiter: everything goes through")
lab.expect(b.fixed_window.peak_per_window == 2 * limit,
           "fixed window: exactly 2x the limit inside one window-length interval at the boundary",
           { headline = true })
lab.expect(b.sliding_log.peak_per_window == limit, "sliding log: never more than the limit")
lab.expect(b.sliding_window.peak_per_window < 2 * limit * 0.8,
           "sliding window counter: overshoots on this adversarial pattern, far less than 2x")
lab.expect(b.token_bucket.peak_per_window <= burst + limit,
           "token bucket: at most burst + rate x window in any window")
lab.expect(b.gcra.accepted == b.token_bucket.accepted, "GCRA decides exactly like the token bucket")
lab.expect(headers.fixed.remaining == 0 and math.abs(headers.fixed.retry_after - 0.3) < 1e-9,
           "the 429 says: retry after the window ends (0.3 s)")
lab.expect(math.abs(headers.log.retry_after - 0.801) < 1e-9,
           "the sliding log says: retry when the oldest request leaves the window (0.801 s)")

local overload = lab.experiment{ name = "rate_limiting: 2x overload, workers die at 5s",
                                 seed = 7, duration = "10s" }
overload:workload{ arrivals = lab.poisson{ rps = 4000 }, clients = 20,
                   service = lab.exponential{ mean = "10ms" } }
for _, v in ipairs{ "none", "fixed_window", "sliding_window", "token_bucket", "gcra" } do
  overload:add{ lesson = "rate_limiting", variant = v,
                params = { limit = 80, burst = 20, capacity = 20, timeout = "5s" } }
end
overload:at("5s", function(sys)
  sys:inject("kill_workers", { count = 5 })
  sys:inject("limiter_state_lost", {})
end)
overload:at("7s", function(sys) sys:inject("restore_workers", {}) end)
local o = overload:run()
lab.report(o)
lab.expect(o.none.timeouts > o.none.requests / 4, "no limiter: the queue grows and requests time out")
for _, v in ipairs{ "sliding_window", "token_bucket", "gcra" } do
  lab.expect(o[v].timeouts == 0 and o[v].ok_p99 < o.none.ok_p99 / 5,
             v .. ": no timeouts and a P99 of accepted requests far below no limiter's")
end
lab.expect(o.token_bucket.queue_max < o.none.queue_max / 10,
           "the limiter keeps the backend queue short, even while workers are down")
