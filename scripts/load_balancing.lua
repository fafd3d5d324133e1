-- Load balancing: round robin vs load-aware policies on identical traffic.
--
-- Part 1: heavy-tailed service times (lognormal, median 20 ms, P99 400 ms) at ~85% load.
--         Round robin keeps feeding a backend stuck on a slow request; least connections and
--         the power of two choices route around it, and the P99 drops several-fold.
-- Part 2: backend 3 dies at 20 s. Requests sent to it fail until two failed health checks
--         (every 5 s: at 20 s and 25 s) remove it from rotation; after that, no more errors.
local lab = require "hldlab"

local exp = lab.experiment{ name = "load_balancing: heavy tail", seed = 42, duration = "300s" }
exp:workload{
  arrivals = lab.poisson{ rps = 185 },
  keys = lab.zipf{ n = 100000, s = 1.1 },
  service = lab.lognormal{ median = "20ms", p99 = "400ms" },
}
for _, v in ipairs{ "round_robin", "least_connections", "p2c", "weighted_round_robin", "ip_hash" } do
  exp:add{ lesson = "load_balancing", variant = v, params = { backends = 10 } }
end
local r = exp:run()
lab.report(r)
lab.expect(r.least_connections.p99 < r.round_robin.p99 / 2,
           "least connections more than halves round robin's P99")
lab.expect(r.p2c.p99 < r.round_robin.p99 / 2, "power of two choices more than halves it too")
lab.expect(r.least_connections.p50 <= r.round_robin.p50, "and does not pay for it at the median")

local dead = lab.experiment{ name = "load_balancing: a backend dies at 20s", seed = 42, duration = "60s" }
dead:workload{ arrivals = lab.constant{ rps = 1000 }, service = "1ms" }
dead:add{ lesson = "load_balancing", variant = "round_robin", label = "no_health_checks",
          params = { health_checks = false } }
dead:add{ lesson = "load_balancing", variant = "round_robin", label = "health_checks",
          params = { health_check_interval = "5s", unhealthy_after = 2 } }
dead:add{ lesson = "load_balancing", variant = "p2c", label = "p2c_health_checks" }
dead:at("20s", function(sys) sys:inject("kill_backend", { backend = 3 }) end)
local d = dead:run()
lab.report(d)
lab.expect(d.health_checks.refused_by_dead == 500,
           "with health checks: exactly the 500 requests routed to it in [20s, 25s) fail")
lab.expect(d.no_health_checks.refused_by_dead > 3 * d.health_checks.refused_by_dead,
           "without health checks it keeps failing a tenth of the traffic to the end")
lab.expect(d.health_checks.removed_by_check == 1, "the health check removed exactly one backend")
