-- A live demo for Grafana: five load balancers on identical traffic for five minutes of virtual
-- time, with a fault every minute. Run it paced so the curves move while the faults happen:
--
--   ./build/hldlab run scripts/live_demo.lua --pace 1 --metrics 127.0.0.1:9464 --hold 30
--
-- (--pace 5 shows it all in a minute; without --pace it finishes at once, like any script.)
--   0s   steady: heavy-tailed service times at ~80% load
--  60s   backend 2 becomes 4x slower for 40 s -> round robin queues behind it, P99 climbs;
--        load-aware policies route around it
-- 120s   10% of requests fail (generic `errors` fault) for 30 s -> error-rate panel, annotation
-- 180s   backend 3 dies                  -> errors until health checks take it out of rotation
-- 240s   backend 3 comes back (health checks put it back in rotation)
local lab = require "hldlab"

local exp = lab.experiment{ name = "live demo: load balancing under faults", seed = 7, duration = "300s" }
exp:workload{
  arrivals = lab.poisson{ rps = 170 },
  keys = lab.zipf{ n = 100000, s = 1.1 },
  service = lab.lognormal{ median = "20ms", p99 = "400ms" },
}
for _, v in ipairs{ "round_robin", "least_connections", "p2c", "weighted_round_robin", "ip_hash" } do
  exp:add{ lesson = "load_balancing", variant = v,
           params = { backends = 10, health_check_interval = "5s", unhealthy_after = 2 } }
end
exp:at("60s", function(sys) sys:inject("slow_backend", { backend = 2, factor = 4 }) end)
exp:at("100s", function(sys) sys:inject("slow_backend", { backend = 2, factor = 1 }) end)
exp:at("120s", function(sys) sys:inject("errors", { rate = 0.1 }) end)
exp:at("150s", function(sys) sys:clear("errors") end)
exp:at("180s", function(sys) sys:inject("kill_backend", { backend = 3 }) end)
exp:at("240s", function(sys) sys:inject("restart_backend", { backend = 3 }) end)
local r = exp:run()
lab.report(r)
lab.expect(r.least_connections.p99 < r.round_robin.p99, "least connections beats round robin at P99")
lab.expect(r.p2c.p99 < r.round_robin.p99, "so does the power of two choices")
lab.expect(r.round_robin.errors > 0, "the injected faults show up as errors")
